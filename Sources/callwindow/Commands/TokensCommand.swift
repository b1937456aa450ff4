import ArgumentParser
import Config
import Daemon
import Foundation
import Store

/// `callwindow tokens rekey`: re-encrypts the stored tokens under a new token key.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Manage the stored, encrypted API tokens.",
        subcommands: [Rekey.self]
    )

    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encrypt every stored token under the new token key (a key rotation).",
            discussion: """
                Reads the new key from tokens.key_env (CALLWINDOW_TOKEN_KEY) and the old one from \
                tokens.old_key_env (CALLWINDOW_TOKEN_KEY_OLD), both required. Tokens the old key opens \
                are sealed again under the new key in one statement; tokens already under the new key \
                are left alone, so running it twice is harmless. Run it once every daemon has both \
                keys (they read tokens sealed under either, and seal under the new one); then remove \
                the old key. Exits 1 when some token could be decrypted with neither key (those are \
                left as they are, and leave the table once expired).
                """
        )

        @OptionGroup var common: ConfigOptions

        func run() async throws {
            let (settings, database) = try common.loadWithDatabase()
            let report: RekeyReport
            do {
                report = try await TokenRekey.run(settings: settings, database: database)
            } catch {
                throw fail(error)
            }
            let (new, old) = (settings.tokens.keyEnv, settings.tokens.oldKeyEnv)
            print("\(report.resealed) tokens re-encrypted under \(new), \(report.alreadyCurrent) already were, "
                + "\(report.undecryptable) could be decrypted with neither key")
            if report.undecryptable > 0 {
                throw fail(CallWindowError(
                    "\(report.undecryptable) stored tokens could be decrypted with neither \(new) nor \(old); "
                    + "they were left as they are (no instance with these keys can use them; they leave the table once expired)"))
            }
        }
    }
}
