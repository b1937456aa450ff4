import ArgumentParser
import Foundation
import Postgres

/// Options of every subcommand that talks to the database.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: ArgumentHelp(
        "PostgreSQL URL or key=value conninfo (default: $CALLWINDOW_DATABASE_URL).", valueName: "URL"))
    var databaseURL: String?

    /// The connection settings, or a usage error that says where the URL can come from.
    func configuration() throws -> PostgresConfiguration {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["CALLWINDOW_DATABASE_URL"], !url.isEmpty else {
            throw ValidationError("no database given: pass --database-url postgres://USER@HOST:PORT/DB or set CALLWINDOW_DATABASE_URL")
        }
        return try PostgresConfiguration(url)
    }
}

/// Prints `error` as one line on stderr and returns exit code 1 (no stack traces, no secrets).
func fail(_ error: any Error) -> ExitCode {
    printError("callwindow: error: \(error)")
    return ExitCode(1)
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
