import Foundation
import Postgres
import Store
import Testing

/// What only the PostgreSQL store does: sealing. Its ledger rules are in LedgerTests' conformance
/// suite, which runs against the store and the memory ledger alike.
@Suite(.timeLimit(.minutes(3))) struct TokenStoreTests {
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
