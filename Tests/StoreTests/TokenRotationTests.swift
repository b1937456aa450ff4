import Foundation
import Ledger
import Postgres
import Store
import Testing

/// A token key rotation: the cipher reads under the old key too, `rekey` re-seals the stored
/// tokens under the new one, and a process whose keys open no stored token leaves it free.
@Suite(.timeLimit(.minutes(3))) struct TokenRotationTests {
    static let old = TokenCipher.generateKeyBase64()
    static let new = TokenCipher.generateKeyBase64()
    static let other = TokenCipher.generateKeyBase64()

    static func cipher(_ key: String, old: String? = nil) throws(StoreError) -> TokenCipher {
        var environment = ["NEW": key]
        if let old { environment["OLD"] = old }
        return try TokenCipher.fromEnvironment(variable: "NEW", oldVariable: "OLD", environment: environment)
    }

    @Test func theNewKeySealsAndTheOldKeyStillOpens() throws {
        let client = UUID()
        let sealedOld = try Self.cipher(Self.old).seal("tok_old", clientAccountID: client, fingerprint: "aaaaaaaaaaaa")
        let rotating = try Self.cipher(Self.new, old: Self.old)
        #expect(rotating.acceptsPreviousKey)
        #expect(try rotating.open(sealedOld, clientAccountID: client, fingerprint: "aaaaaaaaaaaa") == "tok_old")
        // It seals with the new key only: a process holding just the new key opens it.
        let sealedNew = try rotating.seal("tok_new", clientAccountID: client, fingerprint: "bbbbbbbbbbbb")
        #expect(try Self.cipher(Self.new).open(sealedNew, clientAccountID: client, fingerprint: "bbbbbbbbbbbb") == "tok_new")
        #expect(throws: StoreError.self) { try Self.cipher(Self.old).open(sealedNew, clientAccountID: client, fingerprint: "bbbbbbbbbbbb") }
        // Without the old key, the old token is refused with a message naming both variables.
        do {
            _ = try Self.cipher(Self.new).open(sealedOld, clientAccountID: client, fingerprint: "aaaaaaaaaaaa")
            Issue.record("a token sealed under another key must not open")
        } catch {
            #expect(error.description.contains("cannot be decrypted with NEW"), "\(error)")
            #expect(error.description.contains("set OLD to the key it was stored under"), "\(error)")
        }
        // Neither key: the message names both.
        do {
            _ = try Self.cipher(Self.new, old: Self.other).open(sealedOld, clientAccountID: client, fingerprint: "aaaaaaaaaaaa")
            Issue.record("a token sealed under a third key must not open")
        } catch {
            #expect(error.description.contains("cannot be decrypted with NEW or OLD"), "\(error)")
        }
    }

    @Test func aMalformedOldKeyIsAnErrorNamingItsVariableAndTheSameKeyTwiceIsNoRotation() throws {
        do {
            _ = try Self.cipher(Self.new, old: "short")
            Issue.record("a malformed old key must be an error")
        } catch {
            #expect(error.description.contains("the previous token key in OLD is malformed"), "\(error)")
            #expect(!error.description.contains(Self.new))
        }
        #expect(try !Self.cipher(Self.new, old: Self.new).acceptsPreviousKey)
        #expect(try !Self.cipher(Self.new, old: "").acceptsPreviousKey)
        #expect(!"\(try Self.cipher(Self.new, old: Self.old))".contains(Self.old))
    }

    @Test func rekeyReSealsEveryOldTokenInOneGoAndASecondRunChangesNothing() async throws {
        let pool = try await migratedPool()
        // Only this test's rows: rekey re-seals the whole table, which other tests share. Keys of
        // its own, too: another test running meanwhile may store tokens under the suite's keys,
        // and this test's counts would include them.
        let client = UUID()
        let (oldKey, newKey, otherKey) = (TokenCipher.generateKeyBase64(), TokenCipher.generateKeyBase64(), TokenCipher.generateKeyBase64())
        let before = try TokenStore(pool: pool, cipher: try Self.cipher(oldKey))
        let secrets = (0..<3).map { "tok_\($0)_" + UUID().uuidString }
        for (index, secret) in secrets.enumerated() {
            try await before.insert(clientAccountID: client, secret: secret, fingerprint: "a0000000000\(index)",
                                    mintedAt: 0, expiresAt: 4_000_000_000_000, owner: "A", leaseExpiresAt: 1)
        }
        // One already sealed under the new key (an instance restarted with it), one under a key
        // neither knows.
        try await TokenStore(pool: pool, cipher: try Self.cipher(newKey)).insert(
            clientAccountID: client, secret: "tok_new", fingerprint: "b00000000000", mintedAt: 0, expiresAt: 4_000_000_000_000,
            owner: "B", leaseExpiresAt: 1)
        try await TokenStore(pool: pool, cipher: try Self.cipher(otherKey)).insert(
            clientAccountID: client, secret: "tok_lost", fingerprint: "c00000000000", mintedAt: 0, expiresAt: 4_000_000_000_000,
            owner: "C", leaseExpiresAt: 1)
        func rows() async throws -> [(String, Data)] {
            try await pool.query("SELECT fingerprint, ciphertext FROM callwindow.tokens WHERE client_account_id = $1 ORDER BY fingerprint", client)
                .map { (try $0.decode("fingerprint", as: String.self), try $0.decode("ciphertext", as: Data.self)) }
        }
        let sealedBefore = try await rows()

        let rotating = TokenStore(pool: pool, cipher: try Self.cipher(newKey, old: oldKey))
        let first = try await rotating.rekey()
        #expect(first.resealed == 3)
        #expect(first.undecryptable >= 1)
        let after = try await rows()
        let newOnly = try Self.cipher(newKey)
        for (fingerprint, ciphertext) in after where fingerprint != "c00000000000" {
            // Every token this client holds now opens with the new key alone.
            let secret = try newOnly.open(ciphertext, clientAccountID: client, fingerprint: fingerprint)
            #expect(secrets.contains(secret) || secret == "tok_new")
        }
        let unchanged = Dictionary(uniqueKeysWithValues: sealedBefore)
        #expect(after.first { $0.0 == "b00000000000" }?.1 == unchanged["b00000000000"], "a token already under the new key is left as it was")
        #expect(after.first { $0.0 == "c00000000000" }?.1 == unchanged["c00000000000"], "one neither key opens is left as it was")

        let second = try await rotating.rekey()
        #expect(second.resealed == 0, "a second run finds every token under the new key")
        #expect(try await rows().map(\.1) == after.map(\.1))
        #expect(second.alreadyCurrent >= 4)
        try await pool.execute("DELETE FROM callwindow.tokens WHERE client_account_id = $1", client)
        await pool.close()
    }

    @Test func aProcessWhoseKeysOpenNoStoredTokenGivesItBackAndLeasesTheNextOne() async throws {
        let pool = try await migratedPool()
        let client = UUID()
        let far: Int64 = 4_000_000_000_000
        // The latest-expiring token (leased first) is sealed under a key this process lacks.
        try await TokenStore(pool: pool, cipher: try Self.cipher(Self.other)).insert(
            clientAccountID: client, secret: "tok_foreign", fingerprint: "d00000000000", mintedAt: 0, expiresAt: far + 1_000,
            owner: "elsewhere", leaseExpiresAt: 1)
        let store = TokenStore(pool: pool, cipher: try Self.cipher(Self.new, old: Self.old))
        let now: Int64 = 1_000_000
        // The only token cannot be opened: none is leased, and the error says why (the pool logs it).
        let error = await #expect(throws: StoreError.self) {
            try await store.lease(clientAccountID: client, owner: "me", now: now, leaseMs: 60_000, validUntil: now, excluding: [])
        }
        #expect(error?.description.contains("stored token d00000000000 cannot be decrypted with NEW or OLD") == true, "\(String(describing: error))")
        let lease = try await pool.query(
            "SELECT lease_owner, lease_expires_at FROM callwindow.tokens WHERE client_account_id = $1 AND fingerprint = 'd00000000000'", client)[0]
        #expect(try lease.decode("lease_owner", as: String?.self) == nil, "given back at once, not held until the lease lapses")

        try await TokenStore(pool: pool, cipher: try Self.cipher(Self.old)).insert(
            clientAccountID: client, secret: "tok_mine", fingerprint: "e00000000000", mintedAt: 0, expiresAt: far,
            owner: "elsewhere", leaseExpiresAt: 1)
        let mine = try await store.lease(clientAccountID: client, owner: "me", now: now, leaseMs: 60_000, validUntil: now, excluding: [])
        #expect(mine?.secret == "tok_mine", "the next token, sealed under the old key, is leased")
        try await pool.execute("DELETE FROM callwindow.tokens WHERE client_account_id = $1", client)
        await pool.close()
    }
}
