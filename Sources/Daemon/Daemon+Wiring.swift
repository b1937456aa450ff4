public import CallRecordAPI
public import Config
public import Foundation
import Logging
public import Planning
public import Postgres
public import Scheduler
public import ServiceLifecycle
public import Store
public import TokenPool

/// The planner and the dispatchers of one process.
public struct SchedulerServices: Sendable {
    /// The planning loop (one leader per account across processes).
    public let planner: Leader
    /// One dispatcher per configured client account.
    public let dispatchers: [Dispatcher]

    /// Every service, planner first.
    public var all: [any Service] { [planner] + dispatchers }
}

extension Daemon {
    /// The scheduler's services: one planner for all configured client accounts and one
    /// dispatcher (with its token pool) per account. `enforceLimits: false` is for benchmarks.
    public static func schedulerServices(
        settings: Configuration, database: PostgresConfiguration, pool: PostgresPool, api: APIClient, cipher: TokenCipher,
        instance: String, credentials: [(UUID, APIKey)], clock: any WallClock, enforceLimits: Bool = true
    ) throws -> SchedulerServices {
        let transport = settings.api.transport
        var dispatchers: [Dispatcher] = []
        let deliveries = DeliveryStore(instance: instance, transport: transport)
        // The leader's LISTEN connection wakes an account's dispatcher when it has work due.
        let wakes = DueWakes(accounts: credentials.map(\.0))
        for (id, key) in credentials {
            var options = tokenPoolOptions(settings)
            options.enforceLimits = enforceLimits
            let tokens = try TokenPool(
                configuration: .init(clientAccountID: id, key: key, transport: transport, instance: instance),
                options: options, ledger: TokenStore(pool: pool, cipher: cipher), api: api, clock: clock,
                logger: Logger(label: "callwindow.tokens"))
            dispatchers.append(Dispatcher(
                clientAccountID: id, database: pool, tokens: tokens, store: deliveries, owner: instance,
                options: DispatcherOptions(claimBatch: settings.scheduler.claimBatch, maxBatches: settings.scheduler.concurrentBatches,
                                           leaseMs: Int64(settings.scheduler.leaseSeconds) * 1000, naming: transport == .v1 ? .v1 : .v2),
                wake: wakes.signal(for: id), clock: clock, logger: Logger(label: "callwindow.dispatcher")))
        }
        let capacity = Capacity(tokens: settings.tokens.max, transport: transport, utilisation: settings.scheduler.utilisation,
                                startupMs: Int64(settings.scheduler.pushMarginSeconds) * 1000)
        let planner = Planner(options: PlannerOptions(capacity: capacity, horizonMs: Int64(settings.scheduler.horizonSeconds) * 1000),
                              deliveries: deliveries, logger: Logger(label: "callwindow.planner"))
        let plannerService = Leader(configuration: database, clients: credentials.map(\.0), planner: planner, clock: clock,
                                            pollInterval: .seconds(settings.scheduler.pollSeconds), wakes: wakes,
                                            logger: Logger(label: "callwindow.planner"))
        return SchedulerServices(planner: plannerService, dispatchers: dispatchers)
    }

    /// Each configured client's API key, from the credentials file or the environment variables
    /// the configuration names (only `only`'s, when given).
    public static func credentials(
        _ settings: Configuration, only: UUID? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(CallWindowError) -> [(UUID, APIKey)] {
        do {
            return try settings.credentials(only: only, environment: environment).map { ($0.clientAccountID, APIKey(keyID: $0.credential.keyID, apiKey: $0.credential.apiKey)) }
        } catch {
            throw CallWindowError(error.message)
        }
    }

    /// The token cipher: sealing with `tokens.key_env`'s key, and opening with it or, during a
    /// rotation, with `tokens.old_key_env`'s.
    public static func tokenCipher(
        _ settings: Configuration, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TokenCipher {
        try TokenCipher.fromEnvironment(variable: settings.tokens.keyEnv, oldVariable: settings.tokens.oldKeyEnv, environment: environment)
    }

    /// The shared HTTP client for the configured API.
    public static func apiClient(_ settings: Configuration) -> APIClient {
        APIClient(options: APIClientOptions(
            baseURL: settings.api.baseURL, connectTimeoutMs: Int64(settings.api.connectTimeoutMs),
            requestTimeoutMs: Int64(settings.api.requestTimeoutMs), maxConnectionsPerHost: settings.api.maxConnections))
    }

    /// Token pool settings from the configuration. A token is used only while its lease outlives
    /// any request started on it, so the lease is at least four request timeouts long.
    public static func tokenPoolOptions(_ settings: Configuration) -> TokenPoolOptions {
        let batch = settings.api.transport == .batch
        let requestTimeoutMs = Int64(settings.api.connectTimeoutMs + settings.api.requestTimeoutMs)
        return TokenPoolOptions(
            requestsPerWindow: batch ? 60 : 100, windowMs: batch ? 60_000 : 1_000, maxTokens: settings.tokens.max,
            refreshBeforeMs: Int64(settings.tokens.refreshBeforeSeconds) * 1000,
            tokenLifetimeMs: Int64(settings.tokens.ttlSeconds) * 1000, mintBudget: settings.tokens.mintBudget,
            mintWindowMs: Int64(settings.tokens.mintWindowSeconds) * 1000,
            leaseMs: max(Int64(settings.tokens.leaseSeconds) * 1000, 4 * requestTimeoutMs),
            requestTimeoutMs: requestTimeoutMs, maxInFlight: settings.tokens.maxInFlight)
    }

    /// `host-pid-xxxx`: names this process in leases, claims and audit rows.
    public static func instanceName() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(4).lowercased())"
    }
}
