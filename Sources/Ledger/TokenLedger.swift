// Design note — the token ledger, the token pool's only view of shared state.
//
// Tokens are scarce (10 mints per 30 minutes per account) and shared by every instance, so the
// pool keeps two things outside its process: the mint ledger (every mint, counted against the
// rolling budget under a lock, so concurrent reservations in any process never exceed it) and
// the token store (each token sealed, leased to at most one owner at a time, renewed while
// used). `TokenLedger` is that contract; `TokenStore` (module Store) implements it on
// PostgreSQL and `MemoryTokenLedger` in memory, and one conformance suite runs against both.
// All instants are epoch ms passed in by the caller: a ledger never reads a clock.

public import Foundation

/// A token read back from the ledger (decrypted by a store that seals them). `description`
/// shows only the fingerprint.
public struct StoredToken: Sendable, CustomStringConvertible {
    /// The token string (secret).
    public var secret: String
    /// `TokenFingerprint.of(secret)`.
    public var fingerprint: String
    /// When it was minted (epoch ms).
    public var mintedAt: Int64
    /// When it expires (epoch ms).
    public var expiresAt: Int64
    /// When the lease the caller now holds ends (epoch ms).
    public var leaseExpiresAt: Int64
    /// After this instant its previous holder sent nothing with it (it released the lease then,
    /// or its lease lapsed then); `nil` when no one held it before. The new holder waits one rate
    /// window past it, so the two holders together never exceed the API's rate.
    public var quietSince: Int64?

    /// A stored token.
    public init(secret: String, fingerprint: String, mintedAt: Int64, expiresAt: Int64, leaseExpiresAt: Int64, quietSince: Int64? = nil) {
        self.secret = secret
        self.fingerprint = fingerprint
        self.mintedAt = mintedAt
        self.expiresAt = expiresAt
        self.leaseExpiresAt = leaseExpiresAt
        self.quietSince = quietSince
    }

    public var description: String { "stored token \(fingerprint)" }
}

/// What the ledger said about a mint.
public enum MintReservation: Sendable, Hashable {
    /// The budget allowed it; it is recorded as pending with this ledger id (report the result
    /// with `finishMint`).
    case reserved(id: Int64)
    /// The budget is used up until `nextAt` (epoch ms).
    case refused(nextAt: Int64)
    /// The account already has `live` tokens (not revoked and valid past the cap's `validUntil`,
    /// leased or not, plus mints still pending), at least the cap's `max`: lease one instead.
    case atCapacity(live: Int)
}

/// A cap on an account's live tokens for a growth mint: at most `max` tokens that are valid past
/// `validUntil` (the instant a token must outlive to be leased: one about to expire does not
/// count, it is being replaced).
public struct TokenCap: Sendable, Hashable {
    /// Live tokens allowed.
    public var max: Int
    /// A token counts while it expires after this instant (epoch ms).
    public var validUntil: Int64

    /// A cap of `max` tokens valid past `validUntil`.
    public init(max: Int, validUntil: Int64) {
        self.max = max
        self.validUntil = validUntil
    }
}

/// The shared mint ledger and the leased token store of every instance (see the design note).
public protocol TokenLedger: Sendable {
    /// Checks the rolling budget and, if `decide` allows, records a pending mint, both in one
    /// critical section shared by every caller in every process. `decide` gets the instants of
    /// the mints after `now − windowMs` (failed ones included, and any recorded at a later
    /// instant by a caller whose clock runs ahead) and returns `nil` to allow, or the instant
    /// the next mint becomes possible. With a `cap`, it first refuses (`atCapacity`) while the
    /// account already has that many live tokens, counted in the same critical section, so
    /// instances growing at once never exceed it together.
    func reserveMint(
        clientAccountID: UUID, instance: String, now: Int64, windowMs: Int64, cap: TokenCap?,
        decide: @Sendable ([Int64]) -> Int64?
    ) async throws -> MintReservation

    /// Records what became of a reserved mint (`fingerprint` nil: it failed); it keeps counting
    /// against the budget either way, from its reservation until one window after `answeredAt`
    /// (the instant it was answered; an earlier one changes nothing).
    func finishMint(id: Int64, fingerprint: String?, expiresAt: Int64?, answeredAt: Int64) async throws

    /// Instants of the account's mints after `now − windowMs`, oldest first (including any
    /// recorded at a later instant than `now`).
    func recentMints(clientAccountID: UUID, now: Int64, windowMs: Int64) async throws -> [Int64]

    /// Stores a freshly minted token leased to `owner` until `leaseExpiresAt`; a token already
    /// stored under the same fingerprint is left as it is.
    func insert(
        clientAccountID: UUID, secret: String, fingerprint: String, mintedAt: Int64, expiresAt: Int64,
        owner: String, leaseExpiresAt: Int64
    ) async throws

    /// Leases to `owner`, until `now + leaseMs`, one stored token whose lease is free or lapsed
    /// at `now`, that is not revoked, expires after `validUntil` and is not in `excluding`: the
    /// latest-expiring first (then by fingerprint). Returns it, or `nil`.
    func lease(
        clientAccountID: UUID, owner: String, now: Int64, leaseMs: Int64, validUntil: Int64, excluding: [String]
    ) async throws -> StoredToken?

    /// Extends `owner`'s leases on `fingerprints` that are still valid at `now` (and not revoked)
    /// to `now + leaseMs`; returns the fingerprints renewed. A lapsed lease is lost.
    func renew(clientAccountID: UUID, fingerprints: [String], owner: String, now: Int64, leaseMs: Int64) async throws -> [String]

    /// Tokens valid after `validUntil` whose lease another owner holds at `now`, soonest lease
    /// expiry first: a restarted instance watches these (their holder may be dead) before it
    /// spends a mint.
    func leasedElsewhere(clientAccountID: UUID, owner: String, now: Int64, validUntil: Int64) async throws -> [(fingerprint: String, leaseExpiresAt: Int64)]

    /// Gives up `owner`'s lease on `fingerprint` (another owner may take it at once).
    func release(clientAccountID: UUID, fingerprint: String, owner: String, now: Int64) async throws

    /// Marks `fingerprint` revoked (the API answered 401): it is never leased again.
    func revoke(clientAccountID: UUID, fingerprint: String, now: Int64) async throws

    /// Deletes the account's tokens that expired at or before `now`; returns how many.
    @discardableResult
    func deleteExpired(clientAccountID: UUID, now: Int64) async throws -> Int
}

extension TokenLedger {
    /// `reserveMint` without a cap on the account's live tokens.
    public func reserveMint(
        clientAccountID: UUID, instance: String, now: Int64, windowMs: Int64, decide: @Sendable ([Int64]) -> Int64?
    ) async throws -> MintReservation {
        try await reserveMint(clientAccountID: clientAccountID, instance: instance, now: now, windowMs: windowMs,
                              cap: nil, decide: decide)
    }

    /// How long a reserved mint that was never finished counts as a live token, in ms.
    public static var pendingMintMs: Int64 { 60_000 }

    /// `lease(…, excluding:)` with nothing excluded.
    public func lease(clientAccountID: UUID, owner: String, now: Int64, leaseMs: Int64, validUntil: Int64) async throws -> StoredToken? {
        try await lease(clientAccountID: clientAccountID, owner: owner, now: now, leaseMs: leaseMs, validUntil: validUntil, excluding: [])
    }
}
