import ArgumentParser
import Metrics
import Prometheus
import CallRecordAPI
import Config
import Foundation
import Logging
import Planning
import Postgres
import Scheduler
import ServiceLifecycle
import Store
import TokenPool
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
        let settings: Configuration
        let url: PostgresConfiguration
        do {
            settings = try common.load()
            url = try common.databaseConfiguration(settings)
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: settings.log.format == "json")
            handler.logLevel = Logger.Level(rawValue: settings.log.level) ?? .info
            return handler
        }
        let logger = Logger(label: "callwindow")
        do {
            try await Daemon(settings: settings, database: url, logger: logger, signals: signals).run()
        } catch {
            throw fail(error)
        }
    }
}

/// The daemon's wiring: one planner service, one dispatcher (with its token pool) per client
/// account, in one ServiceGroup that drains on SIGTERM/SIGINT.
struct Daemon {
    let settings: Configuration
    let database: PostgresConfiguration
    let logger: Logger
    /// SIGTERM and SIGINT, trapped since the process started; each one asks for a graceful shutdown.
    let signals: UnixSignalsSequence

    func run() async throws {
        let clock = SystemClock()
        guard !settings.clients.isEmpty else {
            throw ValidationError("no client accounts configured: add one under clients: in the configuration file")
        }
        let pool = PostgresPool(configuration: database, maxConnections: settings.database.poolSize)
        guard try await SchemaCheck.isMigrated(pool) else {
            throw ValidationError("the database has no (or an old) CallWindow schema: run callwindow migrate first")
        }
        let cipher = try TokenCipher.fromEnvironment(variable: settings.tokens.keyEnv)
        let transport = Transport(rawValue: settings.api.transport) ?? .v1
        let instance = Self.instanceName()
        let credentials = try Self.credentials(settings)
        let api = Self.apiClient(settings)
        do {
            try await run(pool: pool, api: api, cipher: cipher, transport: transport, instance: instance, credentials: credentials, clock: clock)
        } catch {
            try? await api.shutdown()
            await pool.close()
            throw error
        }
        try? await api.shutdown()
        await pool.close()
        logger.info("callwindow run stopped")
    }

    private func run(pool: PostgresPool, api: APIClient, cipher: TokenCipher, transport: Transport, instance: String,
                     credentials: [(UUID, APIKey)], clock: SystemClock) async throws {
        let scheduler = try Self.schedulerServices(
            settings: settings, database: database, pool: pool, api: api, cipher: cipher, transport: transport,
            instance: instance, credentials: credentials, clock: clock)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let services: [any Service] = scheduler.all + [OperationsServer(
            host: settings.http.host, port: settings.http.port, registry: registry, database: pool, planner: scheduler.planner,
            plannerStaleAfterMs: Int64(settings.scheduler.pollSeconds) * 3_000 + 30_000, now: { clock.now() },
            logger: Logger(label: "callwindow.http"))]
        logger.info("callwindow run starting", metadata: [
            "instance": "\(instance)", "clients": "\(credentials.count)", "transport": "\(transport.rawValue)", "database": "\(database.endpoint)",
        ])
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            logger: logger)
        // After the grace period in-flight sends are cancelled: their records go back to the
        // queue and the results gathered so far are still written.
        configuration.maximumGracefulShutdownDuration = .seconds(settings.scheduler.graceSeconds)
        let group = ServiceGroup(configuration: configuration)
        let signals = signals
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // A signal that arrived before the group runs is remembered by the group.
            tasks.addTask {
                for await signal in signals {
                    logger.info("graceful shutdown requested", metadata: ["signal": "\(signal)"])
                    await group.triggerGracefulShutdown()
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }

    /// The scheduler's services: one planner for all configured client accounts and one
    /// dispatcher (with its token pool) per account. `enforceLimits: false` is for benchmarks.
    static func schedulerServices(
        settings: Configuration, database: PostgresConfiguration, pool: PostgresPool, api: APIClient, cipher: TokenCipher,
        transport: Transport, instance: String, credentials: [(UUID, APIKey)], clock: any WallClock, enforceLimits: Bool = true
    ) throws -> SchedulerServices {
        var dispatchers: [Dispatcher] = []
        let deliveries = DeliveryStore(instance: instance, transport: transport.rawValue)
        for (id, key) in credentials {
            var options = tokenPoolOptions(settings, transport: transport)
            options.enforceLimits = enforceLimits
            let tokens = try TokenPool(
                configuration: .init(clientAccountID: id, key: key, transport: transport, instance: instance),
                options: options, ledger: TokenStore(pool: pool, cipher: cipher), api: api, clock: clock,
                logger: Logger(label: "callwindow.tokens"))
            dispatchers.append(Dispatcher(
                clientAccountID: id, database: pool, tokens: tokens, store: deliveries, owner: instance,
                options: DispatcherOptions(claimBatch: settings.scheduler.claimBatch, maxBatches: settings.scheduler.concurrentBatches,
                                           leaseMs: Int64(settings.scheduler.leaseSeconds) * 1000, naming: transport == .v1 ? .v1 : .v2),
                clock: clock, logger: Logger(label: "callwindow.dispatcher")))
        }
        let capacity = Capacity(tokens: settings.tokens.max, transport: transport, utilisation: settings.scheduler.utilisation,
                                startupMs: Int64(settings.scheduler.pushMarginSeconds) * 1000)
        let planner = Planner(options: PlannerOptions(capacity: capacity, horizonMs: Int64(settings.scheduler.horizonSeconds) * 1000),
                              deliveries: deliveries, logger: Logger(label: "callwindow.planner"))
        let plannerService = PlannerService(configuration: database, clients: credentials.map(\.0), planner: planner, clock: clock,
                                            pollInterval: .seconds(settings.scheduler.pollSeconds), logger: Logger(label: "callwindow.planner"))
        return SchedulerServices(planner: plannerService, dispatchers: dispatchers)
    }

    /// Each configured client's API key, from the environment variables the configuration names.
    static func credentials(_ settings: Configuration, only: UUID? = nil) throws -> [(UUID, APIKey)] {
        let environment = ProcessInfo.processInfo.environment
        var credentials: [(UUID, APIKey)] = []
        for client in settings.clients {
            guard let id = UUID(uuidString: client.clientAccountID), only == nil || only == id else { continue }
            guard let keyID = environment[client.keyIDEnv].flatMap(UUID.init(uuidString:)) else {
                throw ValidationError("client \(id): environment variable \(client.keyIDEnv) must hold the API key id (a uuid)")
            }
            guard let apiKey = environment[client.apiKeyEnv], !apiKey.isEmpty else {
                throw ValidationError("client \(id): environment variable \(client.apiKeyEnv) must hold the API key")
            }
            credentials.append((id, APIKey(keyID: keyID, apiKey: apiKey)))
        }
        if let only, credentials.isEmpty {
            throw ValidationError("client \(only) is not in the configuration's clients:")
        }
        return credentials
    }

    /// The shared HTTP client for the configured API.
    static func apiClient(_ settings: Configuration) -> APIClient {
        APIClient(options: APIClientOptions(
            baseURL: settings.api.baseURL, connectTimeoutMs: Int64(settings.api.connectTimeoutMs),
            requestTimeoutMs: Int64(settings.api.requestTimeoutMs), maxConnectionsPerHost: settings.api.maxConnections))
    }

    /// Token pool settings from the configuration. A token is used only while its lease outlives
    /// any request started on it, so the lease is at least four request timeouts long.
    static func tokenPoolOptions(_ settings: Configuration, transport: Transport) -> TokenPoolOptions {
        let batch = transport == .batch
        let requestTimeoutMs = Int64(settings.api.connectTimeoutMs + settings.api.requestTimeoutMs)
        return TokenPoolOptions(
            requestsPerWindow: batch ? 60 : 100, windowMs: batch ? 60_000 : 1_000, maxTokens: settings.tokens.max,
            refreshBeforeMs: Int64(settings.tokens.refreshBeforeSeconds) * 1000,
            tokenLifetimeMs: Int64(settings.tokens.ttlSeconds) * 1000, mintBudget: settings.tokens.mintBudget,
            mintWindowMs: Int64(settings.tokens.mintWindowSeconds) * 1000,
            leaseMs: max(Int64(settings.tokens.leaseSeconds) * 1000, 4 * requestTimeoutMs),
            requestTimeoutMs: requestTimeoutMs, maxInFlight: settings.tokens.maxInFlight)
    }

    static func instanceName() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(4).lowercased())"
    }
}

/// The planner and the dispatchers of one process.
struct SchedulerServices {
    let planner: PlannerService
    let dispatchers: [Dispatcher]

    var all: [any Service] { [planner] + dispatchers }
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

    func databaseConfiguration(_ settings: Configuration) throws -> PostgresConfiguration {
        let url = databaseURL ?? settings.database.url
        guard !url.isEmpty else {
            throw ValidationError("no database given: set database.url in the configuration, CALLWINDOW_DATABASE_URL, or --database-url")
        }
        return try PostgresConfiguration(url)
    }
}

/// Log lines on stderr: `2026-11-29T12:00:00.000Z info callwindow.planner: message key=value`, or
/// one JSON object per line. Metadata never holds secrets (tokens appear as fingerprints).
struct LineLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, json: Bool) {
        self.label = label
        self.json = json
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let all = metadata.merging(explicit ?? [:]) { $1 }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let time = formatter.string(from: Date())
        let text: String
        if json {
            var object: [String: String] = ["time": time, "level": level.rawValue, "logger": label, "message": message.description]
            for (key, value) in all { object[key] = value.description }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            text = String(decoding: data, as: UTF8.self)
        } else {
            let pairs = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            text = "\(time) \(level.rawValue) \(label): \(message)" + (pairs.isEmpty ? "" : " " + pairs)
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
