import Foundation
import Postgres
import Store
import Testing
import TestSupport

/// `callwindow tokens rekey`, the real binary, against a database of its own (it re-seals the
/// whole table).
@Suite(.timeLimit(.minutes(3))) struct TokensCommandTests {
    @Test func rekeyReSealsUnderTheNewKeyReportsCountsIsIdempotentAndRefusesWithoutTheOldKey() async throws {
        let database = try await TestDatabase.fresh("rekey")
        let url = database.conninfoForTests
        let migrate = try await run(callwindowBinary, ["migrate", "--database-url", url])
        try #require(migrate.status == 0, "migrate failed: \(migrate.stderr)")
        let (old, new) = (TokenCipher.generateKeyBase64(), TokenCipher.generateKeyBase64())
        let pool = PostgresPool(configuration: database, maxConnections: 2)
        let client = UUID()
        let sealedOld = TokenStore(pool: pool, cipher: try TokenCipher.fromEnvironment(variable: "K", environment: ["K": old]))
        for index in 0..<2 {
            try await sealedOld.insert(clientAccountID: client, secret: "tok_\(index)", fingerprint: "a0000000000\(index)", mintedAt: 0,
                                       expiresAt: 4_000_000_000_000, owner: "A", leaseExpiresAt: 1)
        }
        let arguments = ["tokens", "rekey", "--database-url", url]

        let noOld = try await run(callwindowBinary, arguments, environment: ["CALLWINDOW_TOKEN_KEY": new, "CALLWINDOW_TOKEN_KEY_OLD": ""])
        #expect(noOld.status == 1)
        #expect(noOld.stderr.contains("CALLWINDOW_TOKEN_KEY_OLD is not set"), "\(noOld.stderr)")

        let environment = ["CALLWINDOW_TOKEN_KEY": new, "CALLWINDOW_TOKEN_KEY_OLD": old]
        let first = try await run(callwindowBinary, arguments, environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("2 tokens re-encrypted under CALLWINDOW_TOKEN_KEY, 0 already were, 0 could be decrypted with neither key"),
                "\(first.stdout)")
        let second = try await run(callwindowBinary, arguments, environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("0 tokens re-encrypted under CALLWINDOW_TOKEN_KEY, 2 already were"), "\(second.stdout)")
        // The new key alone opens them now.
        let newOnly = TokenStore(pool: pool, cipher: try TokenCipher.fromEnvironment(variable: "K", environment: ["K": new]))
        let leased = try await newOnly.lease(clientAccountID: client, owner: "B", now: 1_000, leaseMs: 1_000, validUntil: 1_000, excluding: [])
        #expect(leased != nil)

        // A token neither key opens: counted, left alone, exit 1; no key in any output.
        let stray = TokenStore(pool: pool, cipher: try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()]))
        try await stray.insert(clientAccountID: client, secret: "tok_x", fingerprint: "c00000000000", mintedAt: 0,
                               expiresAt: 4_000_000_000_000, owner: "C", leaseExpiresAt: 1)
        let third = try await run(callwindowBinary, arguments, environment: environment)
        #expect(third.status == 1)
        #expect(third.stdout.contains("0 tokens re-encrypted under CALLWINDOW_TOKEN_KEY, 2 already were, 1 could be decrypted with neither key"),
                "\(third.stdout)")
        #expect(third.stderr.contains("1 stored tokens could be decrypted with neither CALLWINDOW_TOKEN_KEY nor CALLWINDOW_TOKEN_KEY_OLD"), "\(third.stderr)")
        for output in [noOld, first, second, third] {
            #expect(!(output.stdout + output.stderr).contains(old) && !(output.stdout + output.stderr).contains(new))
        }
        await pool.close()
    }
}
