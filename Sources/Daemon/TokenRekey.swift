public import Config
public import Foundation
public import Postgres
public import Store

/// `callwindow tokens rekey`: re-seals every stored token under the new token key
/// (`tokens.key_env`) that the old one (`tokens.old_key_env`) opens (`TokenStore.rekey`).
public enum TokenRekey {
    /// Re-seals the tokens; throws `CallWindowError` when the old key is not set or equals the new one.
    public static func run(
        settings: Configuration, database: PostgresConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> RekeyReport {
        let (new, old) = (settings.tokens.keyEnv, settings.tokens.oldKeyEnv)
        guard !(environment[old] ?? "").isEmpty else {
            throw CallWindowError("\(old) is not set: set it to the key the tokens are stored under, and \(new) to the new key")
        }
        let cipher = try Daemon.tokenCipher(settings, environment: environment)
        guard cipher.acceptsPreviousKey else {
            throw CallWindowError("\(old) and \(new) hold the same key: set \(new) to the new key")
        }
        let pool = PostgresPool(configuration: database, maxConnections: 1)
        do {
            let report = try await TokenStore(pool: pool, cipher: cipher).rekey()
            await pool.close()
            return report
        } catch {
            await pool.close()
            throw error
        }
    }
}
