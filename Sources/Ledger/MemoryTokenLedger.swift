public import Foundation
import Synchronization

/// A `TokenLedger` held in memory, for tests and simulations: the same rules as the PostgreSQL
/// store (the conformance suite checks both), one lock for the whole ledger. Several pools
/// sharing one instance behave like several processes sharing one database. Secrets are kept in
/// memory as they are; nothing here is persisted.
public final class MemoryTokenLedger: TokenLedger {
    private struct Mint {
        var client: UUID
        var at: Int64
        var fingerprint: String?
        var expiresAt: Int64?
        var finished = false
    }

    private struct Token {
        var secret: String
        var mintedAt: Int64
        var expiresAt: Int64
        var owner: String?
        var leaseExpiresAt: Int64?
        var revokedAt: Int64?
        var quietAfter: Int64?
    }

    private struct Key: Hashable {
        var client: UUID
        var fingerprint: String
    }

    private struct State {
        var mints: [Int64: Mint] = [:]
        var nextMintID: Int64 = 0
        var tokens: [Key: Token] = [:]
    }

    private let state = Mutex(State())

    /// An empty ledger.
    public init() {}

    public func reserveMint(
        clientAccountID: UUID, instance: String, now: Int64, windowMs: Int64, cap: TokenCap?,
        decide: @Sendable ([Int64]) -> Int64?
    ) async throws -> MintReservation {
        state.withLock { state in
            if let cap {
                let stored = state.tokens.filter { $0.key.client == clientAccountID && $0.value.revokedAt == nil && $0.value.expiresAt > cap.validUntil }.count
                let pending = state.mints.values.filter { $0.client == clientAccountID && !$0.finished && $0.at > now - Self.pendingMintMs }.count
                if stored + pending >= cap.max { return .atCapacity(live: stored + pending) }
            }
            let recent = state.mints.values.filter { $0.client == clientAccountID && $0.at > now - windowMs }.map(\.at).sorted()
            if let nextAt = decide(recent) { return .refused(nextAt: nextAt) }
            state.nextMintID += 1
            state.mints[state.nextMintID] = Mint(client: clientAccountID, at: now)
            return .reserved(id: state.nextMintID)
        }
    }

    public func finishMint(id: Int64, fingerprint: String?, expiresAt: Int64?, answeredAt: Int64) async throws {
        state.withLock { state in
            if let at = state.mints[id]?.at { state.mints[id]?.at = max(at, answeredAt) }
            state.mints[id]?.fingerprint = fingerprint
            state.mints[id]?.expiresAt = expiresAt
            state.mints[id]?.finished = true
        }
    }

    public func recentMints(clientAccountID: UUID, now: Int64, windowMs: Int64) async throws -> [Int64] {
        state.withLock { state in
            state.mints.values.filter { $0.client == clientAccountID && $0.at > now - windowMs }.map(\.at).sorted()
        }
    }

    public func insert(
        clientAccountID: UUID, secret: String, fingerprint: String, mintedAt: Int64, expiresAt: Int64,
        owner: String, leaseExpiresAt: Int64
    ) async throws {
        state.withLock { state in
            let key = Key(client: clientAccountID, fingerprint: fingerprint)
            guard state.tokens[key] == nil else { return }
            state.tokens[key] = Token(secret: secret, mintedAt: mintedAt, expiresAt: expiresAt, owner: owner, leaseExpiresAt: leaseExpiresAt)
        }
    }

    public func lease(
        clientAccountID: UUID, owner: String, now: Int64, leaseMs: Int64, validUntil: Int64, excluding: [String]
    ) async throws -> StoredToken? {
        state.withLock { state in
            let free = state.tokens.filter { key, token in
                key.client == clientAccountID && token.revokedAt == nil && token.expiresAt > validUntil
                    && (token.leaseExpiresAt.map { $0 <= now } ?? true) && !excluding.contains(key.fingerprint)
            }
            guard let (key, _) = free.min(by: { a, b in
                a.value.expiresAt != b.value.expiresAt ? a.value.expiresAt > b.value.expiresAt : a.key.fingerprint < b.key.fingerprint
            }) else { return nil }
            guard let before = state.tokens[key] else { return nil }
            // The previous holder's last instant: its release, or its lease's lapse.
            let quiet = [before.quietAfter, before.leaseExpiresAt].compactMap { $0 }.max()
            state.tokens[key]?.owner = owner
            state.tokens[key]?.leaseExpiresAt = now + leaseMs
            return StoredToken(secret: before.secret, fingerprint: key.fingerprint, mintedAt: before.mintedAt,
                               expiresAt: before.expiresAt, leaseExpiresAt: now + leaseMs, quietSince: quiet)
        }
    }

    public func renew(clientAccountID: UUID, fingerprints: [String], owner: String, now: Int64, leaseMs: Int64) async throws -> [String] {
        state.withLock { state in
            var renewed: [String] = []
            for fingerprint in fingerprints {
                let key = Key(client: clientAccountID, fingerprint: fingerprint)
                guard let token = state.tokens[key], token.owner == owner, token.revokedAt == nil,
                      let expiry = token.leaseExpiresAt, expiry > now else { continue }
                state.tokens[key]?.leaseExpiresAt = now + leaseMs
                renewed.append(fingerprint)
            }
            return renewed
        }
    }

    public func leasedElsewhere(clientAccountID: UUID, owner: String, now: Int64, validUntil: Int64) async throws -> [(fingerprint: String, leaseExpiresAt: Int64)] {
        state.withLock { state in
            state.tokens.compactMap { key, token -> (fingerprint: String, leaseExpiresAt: Int64)? in
                guard key.client == clientAccountID, token.revokedAt == nil, token.expiresAt > validUntil,
                      let expiry = token.leaseExpiresAt, expiry > now, token.owner != owner else { return nil }
                return (key.fingerprint, expiry)
            }.sorted { $0.leaseExpiresAt != $1.leaseExpiresAt ? $0.leaseExpiresAt < $1.leaseExpiresAt : $0.fingerprint < $1.fingerprint }
        }
    }

    public func release(clientAccountID: UUID, fingerprint: String, owner: String, now: Int64) async throws {
        state.withLock { state in
            let key = Key(client: clientAccountID, fingerprint: fingerprint)
            guard state.tokens[key]?.owner == owner else { return }
            state.tokens[key]?.owner = nil
            state.tokens[key]?.leaseExpiresAt = nil
            state.tokens[key]?.quietAfter = now
        }
    }

    public func revoke(clientAccountID: UUID, fingerprint: String, now: Int64) async throws {
        state.withLock { state in
            let key = Key(client: clientAccountID, fingerprint: fingerprint)
            guard state.tokens[key] != nil else { return }
            state.tokens[key]?.revokedAt = now
            state.tokens[key]?.owner = nil
            state.tokens[key]?.leaseExpiresAt = nil
        }
    }

    @discardableResult
    public func deleteExpired(clientAccountID: UUID, now: Int64) async throws -> Int {
        state.withLock { state in
            let expired = state.tokens.filter { $0.key.client == clientAccountID && $0.value.expiresAt <= now }.map(\.key)
            for key in expired { state.tokens[key] = nil }
            return expired.count
        }
    }

}
