import Foundation
import Postgres
import Store
import Testing
import TokenPool

@Suite(.timeLimit(.minutes(3))) struct TokenStoreTests {
    @Test func concurrentCallersNeverExceedTheMintBudget() async throws {
        let pool = try await migratedPool()
        let store = TokenStore(pool: pool, cipher: try randomCipher())
        let client = UUID()
        let budget = MintBudget()
        let now: Int64 = 1_800_000_000_000
        let results = try await withThrowingTaskGroup(of: MintReservation.self) { group in
            for caller in 0..<30 {
                group.addTask {
                    let at = now + Int64(caller)
                    return try await store.reserveMint(clientAccountID: client, instance: "caller-\(caller)", now: at, windowMs: budget.windowMs) { recent in
                        if case .refused(let next) = budget.decide(recentMints: recent, now: at) { return next }
                        return nil
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let reserved = results.filter { if case .reserved = $0 { true } else { false } }
        #expect(reserved.count == 10)
        for case .refused(let nextAt) in results {
            #expect(nextAt >= now + budget.windowMs && nextAt < now + budget.windowMs + 30)
        }
        // A failed mint still counts.
        if case .reserved(let id) = reserved[0] {
            try await store.finishMint(id: id, fingerprint: nil, expiresAt: nil)
        }
        let recent = try await store.recentMints(clientAccountID: client, now: now + 100, windowMs: budget.windowMs)
        #expect(recent.count == 10)
        #expect(budget.decide(recentMints: recent, now: now + 100) != .allowed)
        await pool.close()
    }

    @Test func aLeaseIsTakenOverOnlyAfterItExpired() async throws {
        let pool = try await migratedPool()
        let store = TokenStore(pool: pool, cipher: try randomCipher())
        let client = UUID()
        let now: Int64 = 1_800_000_000_000
        try await store.insert(
            clientAccountID: client, secret: "secret-token-1", fingerprint: "aaaaaaaaaaaa", mintedAt: now,
            expiresAt: now + 3_600_000, owner: "A", leaseExpiresAt: now + 15_000
        )
        let early = try await store.lease(clientAccountID: client, owner: "B", now: now + 14_999, leaseMs: 15_000, validUntil: now + 60_000)
        #expect(early == nil, "A's lease has 1 ms left")
        // A renews in time; B still cannot take it.
        #expect(try await store.renew(clientAccountID: client, fingerprints: ["aaaaaaaaaaaa"], owner: "A", now: now + 10_000, leaseMs: 15_000) == ["aaaaaaaaaaaa"])
        #expect(try await store.lease(clientAccountID: client, owner: "B", now: now + 20_000, leaseMs: 15_000, validUntil: now + 60_000) == nil)
        // A stops renewing; once the lease expired B takes over, and A can no longer renew.
        let taken = try await store.lease(clientAccountID: client, owner: "B", now: now + 25_000, leaseMs: 15_000, validUntil: now + 60_000)
        #expect(taken?.secret == "secret-token-1")
        #expect(taken?.leaseExpiresAt == now + 40_000)
        #expect(try await store.renew(clientAccountID: client, fingerprints: ["aaaaaaaaaaaa"], owner: "A", now: now + 26_000, leaseMs: 15_000) == [])
        // Released: free at once. Revoked: never leased again. Too short-lived: not leased.
        try await store.release(clientAccountID: client, fingerprint: "aaaaaaaaaaaa", owner: "B")
        #expect(try await store.lease(clientAccountID: client, owner: "A", now: now + 27_000, leaseMs: 15_000, validUntil: now + 3_600_000) == nil)
        #expect(try await store.lease(clientAccountID: client, owner: "A", now: now + 27_000, leaseMs: 15_000, validUntil: now + 60_000) != nil)
        try await store.revoke(clientAccountID: client, fingerprint: "aaaaaaaaaaaa", now: now + 28_000)
        #expect(try await store.lease(clientAccountID: client, owner: "B", now: now + 100_000, leaseMs: 15_000, validUntil: now + 200_000) == nil)
        await pool.close()
    }

    @Test func concurrentLeasersGetDistinctTokens() async throws {
        let pool = try await migratedPool()
        let store = TokenStore(pool: pool, cipher: try randomCipher())
        let client = UUID()
        let now: Int64 = 1_800_000_000_000
        for n in 0..<3 {
            try await store.insert(
                clientAccountID: client, secret: "tok-\(n)", fingerprint: String(repeating: "\(n)", count: 12), mintedAt: now,
                expiresAt: now + 3_600_000, owner: "old", leaseExpiresAt: now
            )
        }
        let got = try await withThrowingTaskGroup(of: String?.self) { group in
            for n in 0..<8 {
                group.addTask {
                    try await store.lease(clientAccountID: client, owner: "p\(n)", now: now + 1, leaseMs: 15_000, validUntil: now + 60_000)?.fingerprint
                }
            }
            return try await group.reduce(into: [String]()) { if let f = $1 { $0.append(f) } }
        }
        #expect(got.count == 3)
        #expect(Set(got).count == 3, "no token leased twice")
        await pool.close()
    }

    @Test func theTableHoldsOnlyCiphertext() async throws {
        let pool = try await migratedPool()
        let cipher = try randomCipher()
        let store = TokenStore(pool: pool, cipher: cipher)
        let client = UUID()
        let secret = "tok_" + UUID().uuidString
        let fingerprint = "bbbbbbbbbbbb"
        try await store.insert(
            clientAccountID: client, secret: secret, fingerprint: fingerprint, mintedAt: 0,
            expiresAt: 4_000_000_000_000, owner: "A", leaseExpiresAt: 1
        )
        let rows = try await pool.query(
            "SELECT ciphertext, encode(ciphertext, 'escape') AS text FROM callwindow.tokens WHERE client_account_id = $1", client
        )
        let ciphertext = try #require(rows.first).decode("ciphertext", as: Data.self)
        #expect(ciphertext.range(of: Data(secret.utf8)) == nil)
        #expect(ciphertext.range(of: Data(secret.prefix(8).utf8)) == nil)
        #expect(try cipher.open(ciphertext, clientAccountID: client, fingerprint: fingerprint) == secret)
        // Another key, or the row under another fingerprint, does not decrypt.
        #expect(throws: StoreError.self) { try randomCipher().open(ciphertext, clientAccountID: client, fingerprint: fingerprint) }
        #expect(throws: StoreError.self) { try cipher.open(ciphertext, clientAccountID: client, fingerprint: "cccccccccccc") }
        await pool.close()
    }

    @Test func aMissingOrMalformedKeyIsAClearErrorThatNeverShowsTheKey() throws {
        do {
            _ = try TokenCipher.fromEnvironment(environment: [:])
            Issue.record("a missing key must be an error")
        } catch {
            #expect(error.description.contains("CALLWINDOW_TOKEN_KEY"))
            #expect(error.description.contains("openssl rand -base64 32"))
        }
        let short = Data(repeating: 7, count: 16).base64EncodedString()
        for bad in [short, "not base64 at all!"] {
            do {
                _ = try TokenCipher.fromEnvironment(environment: ["CALLWINDOW_TOKEN_KEY": bad])
                Issue.record("a malformed key must be an error")
            } catch {
                #expect(error.description.contains("malformed"))
                #expect(!error.description.contains(bad))
            }
        }
        let good = TokenCipher.generateKeyBase64()
        let cipher = try TokenCipher.fromEnvironment(environment: ["CALLWINDOW_TOKEN_KEY": good])
        #expect(!"\(cipher)".contains(good))
    }
}
