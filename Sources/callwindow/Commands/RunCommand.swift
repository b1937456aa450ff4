import ArgumentParser
import Config
import Daemon
import Foundation
import Logging
import Postgres
import UnixSignals

/// `callwindow run`: the scheduler daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the scheduler daemon until SIGTERM or SIGINT (several instances may share one database).",
        discussion: """
            Plans the configured client accounts' campaigns, creates deliveries just in time, and \
            pushes them through a token pool paced at the API's limits, auditing every attempt. \
            SIGTERM stops claiming, finishes or releases in-flight work, writes its results and exits 0.
            """
    )

    @OptionGroup var common: ConfigOptions

    func run() async throws {
        // Trapped before anything else: a SIGTERM that arrives while the daemon is still loading
        // its configuration or checking the schema is kept, and stops it gracefully (exit 0) once
        // its services start, instead of killing the process by the signal's default action.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let (settings, database) = try common.loadWithDatabase()
        LineLogHandler.bootstrap(settings.log)
        do {
            try await Daemon(settings: settings, database: database, logger: Logger(label: "callwindow"), signals: signals).run()
        } catch {
            throw fail(error)
        }
    }
}

/// `--config` and `--database-url`, for the subcommands that read the configuration file.
struct ConfigOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Configuration file (default: config/callwindow.yaml when present).", valueName: "FILE"))
    var config: String?

    @Option(name: .customLong("database-url"), help: ArgumentHelp("PostgreSQL URL (overrides database.url).", valueName: "URL"))
    var databaseURL: String?

    func load() throws -> Configuration {
        if let config {
            guard FileManager.default.fileExists(atPath: config) else { throw ValidationError("--config \(config): no such file") }
            return try Configuration.load(path: config)
        }
        let fallback = "config/callwindow.yaml"
        return try Configuration.load(path: FileManager.default.fileExists(atPath: fallback) ? fallback : nil)
    }

    /// The configuration and its database, or exit 1 with the configuration's own message.
    func loadWithDatabase() throws -> (Configuration, PostgresConfiguration) {
        do {
            let settings = try load()
            return (settings, try databaseConfiguration(settings))
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
    }

    func databaseConfiguration(_ settings: Configuration) throws -> PostgresConfiguration {
        let url = databaseURL ?? settings.database.url
        guard !url.isEmpty else {
            throw ValidationError("no database given: set database.url in the configuration, CALLWINDOW_DATABASE_URL, or --database-url")
        }
        return try PostgresConfiguration(url)
    }
}

