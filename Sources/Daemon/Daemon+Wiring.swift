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
import Synchronization

/// The planner and the dispatchers of one process, and the accounts they serve, which a reload
/// changes (`apply`).
public final class SchedulerServices: Sendable {
    /// The planning loop (one leader per account across processes).
    public let planner: Leader
    /// One dispatcher per client account served, as one service.
    public let group: DispatcherGroup
    private let wakes: DueWakes
    private let makeDispatcher: @Sendable (UUID, APIKey, WakeSignal) throws -> Dispatcher
    private let keys: Mutex<[(UUID, APIKey)]>

    init(planner: Leader, group: DispatcherGroup, wakes: DueWakes, keys: [(UUID, APIKey)],
         makeDispatcher: @escaping @Sendable (UUID, APIKey, WakeSignal) throws -> Dispatcher) {
        self.planner = planner
        self.group = group
        self.wakes = wakes
        self.keys = Mutex(keys)
        self.makeDispatcher = makeDispatcher
    }

    /// Every dispatcher run so far, those of accounts removed by a reload included.
    public var dispatchers: [Dispatcher] { group.all }

    /// The client accounts served now.
    public var accounts: [UUID] { group.accounts }

    /// Every service, planner first.
    public var all: [any Service] { [planner, group] }

    /// Serves exactly the accounts of `credentials` from now on: an account added gets its
    /// dispatcher and token pool, one removed drains (`DispatcherGroup.drain`) and is no longer
    /// planned here, one whose key changed mints with the new key from now on
    /// (`TokenPool.useKey`). Nothing changes when it throws.
    public func apply(_ credentials: [(UUID, APIKey)]) throws -> AccountChanges {
        let changes = AccountChanges.between(keys.withLock { $0 }, credentials)
        let key = Dictionary(credentials, uniquingKeysWith: { first, _ in first })
        var added: [Dispatcher] = []
        do {
            for id in changes.added {
                guard let apiKey = key[id] else { continue }
                added.append(try makeDispatcher(id, apiKey, wakes.add(id)))
            }
        } catch {
            for id in changes.added { wakes.remove(id) }
            throw error
        }
        for id in changes.rekeyed {
            if let apiKey = key[id] { group.dispatcher(for: id)?.tokenPool.useKey(apiKey) }
        }
        for id in changes.removed {
            group.drain(id)
            wakes.remove(id)
        }
        for dispatcher in added { group.add(dispatcher) }
        keys.withLock { $0 = credentials }
        planner.setClients(credentials.map(\.0))
        return changes
    }
}

/// What a reload changes in the accounts a process serves. Keys are compared, never shown.
public struct AccountChanges: Sendable, Equatable {
    /// Accounts served from now on that were not.
    public var added: [UUID] = []
    /// Accounts no longer served.
    public var removed: [UUID] = []
    /// Accounts still served whose API key id or key changed.
    public var rekeyed: [UUID] = []
    /// Accounts still served with the same key.
    public var unchanged = 0

    /// Whether nothing changed.
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && rekeyed.isEmpty }

    /// The changes from the accounts `old` to `new` (each in its configured order).
    public static func between(_ old: [(UUID, APIKey)], _ new: [(UUID, APIKey)]) -> AccountChanges {
        let before = Dictionary(old, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new, uniquingKeysWith: { first, _ in first })
        var changes = AccountChanges()
        for (id, key) in new {
            switch before[id] {
            case nil: changes.added.append(id)
            case key?: changes.unchanged += 1
            case _?: changes.rekeyed.append(id)
            }
        }
        changes.removed = old.map(\.0).filter { after[$0] == nil }
        return changes
    }
}

extension Daemon {
    /// The scheduler's services: one planner for all configured client accounts and one
    /// dispatcher (with its token pool) per account, the dispatchers of removed accounts given
    /// `drainLimitMs` to finish. `enforceLimits: false` is for benchmarks.
    public static func schedulerServices(
        settings: Configuration, database: PostgresConfiguration, pool: PostgresPool, api: APIClient, cipher: TokenCipher,
        instance: String, credentials: [(UUID, APIKey)], clock: any WallClock, enforceLimits: Bool = true,
        drainLimitMs: Int64? = nil
    ) throws -> SchedulerServices {
        let transport = settings.api.transport
        let deliveries = DeliveryStore(instance: instance, transport: transport)
        let ledger = TokenStore(pool: pool, cipher: cipher)
        let options = {
            var options = tokenPoolOptions(settings)
            options.enforceLimits = enforceLimits
            return options
        }()
        let dispatcherOptions = DispatcherOptions(
            claimBatch: settings.scheduler.claimBatch, maxBatches: settings.scheduler.concurrentBatches,
            leaseMs: Int64(settings.scheduler.leaseSeconds) * 1000, naming: transport == .v1 ? .v1 : .v2)
        // `tokens.max_in_flight` is the process's: its accounts' pools share it.
        let share = InFlightShare(limit: settings.tokens.maxInFlight)
        let makeDispatcher: @Sendable (UUID, APIKey, WakeSignal) throws -> Dispatcher = { id, key, wake in
            let tokens = try TokenPool(
                configuration: .init(clientAccountID: id, key: key, transport: transport, instance: instance),
                options: options, ledger: ledger, api: api, clock: clock, logger: Logger(label: "callwindow.tokens"), share: share)
            return Dispatcher(
                clientAccountID: id, database: pool, tokens: tokens, store: deliveries, owner: instance, options: dispatcherOptions,
                wake: wake, clock: clock, logger: Logger(label: "callwindow.dispatcher"))
        }
        // The leader's LISTEN connection wakes an account's dispatcher when it has work due.
        let wakes = DueWakes(accounts: credentials.map(\.0))
        var dispatchers: [Dispatcher] = []
        for (id, key) in credentials {
            dispatchers.append(try makeDispatcher(id, key, wakes.signal(for: id)))
        }
        let capacity = Capacity(tokens: settings.tokens.max, transport: transport, utilisation: settings.scheduler.utilisation,
                                startupMs: Int64(settings.scheduler.pushMarginSeconds) * 1000)
        let planner = Planner(options: PlannerOptions(capacity: capacity, horizonMs: Int64(settings.scheduler.horizonSeconds) * 1000),
                              deliveries: deliveries, logger: Logger(label: "callwindow.planner"))
        let plannerService = Leader(configuration: database, clients: credentials.map(\.0), planner: planner, clock: clock,
                                    pollInterval: .seconds(settings.scheduler.pollSeconds), wakes: wakes, liveness: LeaderLiveness(),
                                    logger: Logger(label: "callwindow.planner"))
        let group = DispatcherGroup(dispatchers, drainLimitMs: drainLimitMs ?? Int64(settings.scheduler.graceSeconds) * 1000, clock: clock,
                                    logger: Logger(label: "callwindow.dispatcher"))
        return SchedulerServices(planner: plannerService, group: group, wakes: wakes, keys: credentials, makeDispatcher: makeDispatcher)
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
