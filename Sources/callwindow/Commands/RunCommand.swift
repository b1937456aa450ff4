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
            SIGTERM stops claiming, finishes or releases in-flight work, writes its results and exits 0. \
            SIGHUP reads the configuration and credentials again: added accounts start, removed ones \
            drain, changed API keys mint the next tokens; a file that cannot be used is refused (logged) \
            and the daemon keeps its accounts.
            """
    )

    @OptionGroup var common: ConfigOptions

    func run() async throws {
        // Trapped before anything else: a SIGTERM that arrives while the daemon is still loading
        // its configuration or checking the schema is kept, and stops it gracefully (exit 0) once
        // its services start, instead of killing the process by the signal's default action.
        // SIGHUP too: its default action would end the process.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let (settings, database) = try common.loadWithDatabase()
        LineLogHandler.bootstrap(settings.log)
        // A reload reads the file the daemon started with (not a fallback found later).
        let path = try common.path()
        do {
            try await Daemon(settings: settings, database: database, logger: Logger(label: "callwindow"), signals: signals,
                             reloadConfiguration: { try Configuration.load(path: path) }).run()
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

    /// The configuration file to read: `--config`, else `config/callwindow.yaml` when present,
    /// else none (the defaults and the environment).
    func path() throws -> String? {
        if let config {
            guard FileManager.default.fileExists(atPath: config) else { throw ValidationError("--config \(config): no such file") }
            return config
        }
        let fallback = "config/callwindow.yaml"
        return FileManager.default.fileExists(atPath: fallback) ? fallback : nil
    }

    func load() throws -> Configuration {
        try Configuration.load(path: try path())
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

