import Foundation
import CallRecordAPI
import Config
import Daemon
import Logging
public import Planning
import Postgres
import Processes
import Sandbox
import Scheduler
import ServiceLifecycle
import Store
import Synchronization
import UnixSignals

/// `callwindow bench accounts`: N client accounts on one daemon, each with one window due now,
/// pushed through the daemon's own wiring (one leader, one dispatcher and token pool per account)
/// until every record is accepted. How the windows' deadlines are set: `AccountsPlan`.
public struct AccountsBenchmark: Sendable {
    /// Client accounts, each with its own key, label, token pool and campaign.
    public var accounts = 100
    /// Records in each account's window (1 caller × N receivers).
    public var recordsPerAccount = 2_000
    /// Tokens per account (`tokens.max`).
    public var tokensPerAccount = 1
    /// The transport pushed with.
    public var transport: Transport = .v1
    /// The sandbox enforces no limit and the pools pace nothing: measures the engine.
    public var noLimits = false
    /// Records/s the whole daemon is planned to sustain (`AccountsPlan.engineRate`).
    public var engineRate: Double = 1_000
    /// A database to insert the campaigns into instead of a private cluster.
    public var databaseURL: String?
    /// Connections of the daemon's pool (`database.pool_size`); nil: the configuration's default.
    public var poolSize: Int?
    /// Requests in flight per token pool (`tokens.max_in_flight`); nil: the configuration's default.
    public var maxInFlight: Int?
    /// HTTP connections to the API (`api.max_connections`); nil: the configuration's default.
    public var apiConnections: Int?
    /// Deliveries claimed at once (`scheduler.claim_batch`); nil: the configuration's default.
    public var claimBatch: Int?
    /// Claimed batches out at once per account (`scheduler.concurrent_batches`); nil: the configuration's default.
    public var concurrentBatches: Int?
    /// Seconds before giving up (default: five times the windows' push time, at least 120).
    public var timeout: Int?

    /// The defaults of `callwindow bench accounts`.
    public init() {}

    /// The deadlines the bench sets.
    public var plan: AccountsPlan {
        let defaults = Configuration().scheduler
        return AccountsPlan(accounts: accounts, recordsPerAccount: recordsPerAccount, tokensPerAccount: tokensPerAccount,
                            transport: transport, engineRate: engineRate, daemonUtilisation: defaults.utilisation,
                            marginMs: Int64(defaults.pushMarginSeconds) * 1_000)
    }

    /// Runs the benchmark: a private durable cluster (unless `databaseURL`) and an in-process
    /// sandbox serving every account, both stopped afterwards.
    public func run() async throws -> AccountsReport {
        if databaseURL == nil { progress("starting a private PostgreSQL cluster (durable)") }
        return try await withBenchDatabase(url: databaseURL, fast: false) { database, cluster in
            try await migrateBenchDatabase(database)
            let setup = try await PostgresConnection.connect(database)
            let durable: Bool
            do {
                durable = try await BenchStore.isDurable(on: setup)
            } catch {
                await setup.close()
                throw error
            }
            await setup.close()
            let benchAccounts = (0..<accounts).map { _ in BenchAccount.random() }
            let sandbox = try BenchAccount.inProcessSandbox(for: benchAccounts, enforceLimits: !noLimits)
            let dataDirectory = cluster?.directory.appendingPathComponent("data").path
            return try await sandbox.withRunning { port in
                try await measure(baseURL: "http://127.0.0.1:\(port)", accounts: benchAccounts, database: database,
                                  durable: durable, dataDirectory: dataDirectory)
            }
        }
    }

    private func measure(baseURL: String, accounts: [BenchAccount], database: PostgresConfiguration, durable: Bool,
                         dataDirectory: String?) async throws -> AccountsReport {
        let plan = self.plan
        let clock = SystemClock()
        // The daemon's configuration, with the bench's accounts, tokens and planning share.
        var settings = Configuration()
        settings.api.baseURL = baseURL
        settings.api.transport = transport
        settings.tokens.max = tokensPerAccount
        settings.scheduler.utilisation = plan.utilisation
        if let poolSize { settings.database.poolSize = poolSize }
        if let maxInFlight { settings.tokens.maxInFlight = maxInFlight }
        if let apiConnections { settings.api.maxConnections = apiConnections }
        if let claimBatch { settings.scheduler.claimBatch = claimBatch }
        if let concurrentBatches { settings.scheduler.concurrentBatches = concurrentBatches }
        // The daemon's session settings (JIT off, statement timeouts), so the bench measures what it does.
        let sessions = Daemon.sessions(database)
        let pool = PostgresPool(configuration: sessions.queue, maxConnections: settings.database.poolSize)
        let api = Daemon.apiClient(settings)
        let keyVariable = settings.tokens.keyEnv
        var environment = ProcessInfo.processInfo.environment
        if (environment[keyVariable] ?? "").isEmpty { environment[keyVariable] = TokenCipher.generateKeyBase64() }
        let cipher = try TokenCipher.fromEnvironment(variable: keyVariable, environment: environment)
        let instance = "bench-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(6).lowercased())"
        let scheduler = try Daemon.schedulerServices(
            settings: settings, database: sessions.leader, pool: pool, api: api, cipher: cipher, instance: instance,
            credentials: accounts.map { ($0.clientAccountID, $0.key) }, clock: clock, enforceLimits: !noLimits)
        let labelled = accounts.map { (clientAccountID: $0.clientAccountID, labelID: $0.labelID) }
        try await BenchStore.ensureLabels(labelled, on: pool)

        let counter = PostgresPool(configuration: database, maxConnections: 1)
        let transactionsBefore = try await counter.withConnection { try await BenchStore.transactions(on: $0) }
        let monitor = AccountsMonitor(
            pool: pool, accounts: labelled, plan: plan, planner: scheduler.planner, clock: clock,
            timeoutMs: Int64(timeout ?? max(120, Int(plan.pushMs / 1_000) * 5)) * 1_000)
        let cpuBefore = cpuSeconds()
        let postgresBefore = dataDirectory.map(postgresCPUSeconds(dataDirectory:))
        var configuration = ServiceGroupConfiguration(
            services: (scheduler.all + [monitor]).map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigint, .sigterm],
            logger: Logger(label: "callwindow.bench"))
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            try? await api.shutdown()
            await pool.close()
            await counter.close()
            throw error
        }
        let cpu = cpuSeconds() - cpuBefore
        let postgresCPU = dataDirectory.flatMap { directory in postgresBefore.map { postgresCPUSeconds(dataDirectory: directory) - $0 } }
        try? await api.shutdown()
        // A backend publishes its transaction counts when it exits: close the daemon's
        // connections and give the server a moment before reading the counter again.
        await pool.close()
        try await clock.sleep(milliseconds: 1_500)
        guard let campaigns = monitor.campaigns, let committedAt = monitor.committedAt else {
            await counter.close()
            throw BenchmarkError(monitor.failure ?? "the bench stopped before its campaigns were inserted")
        }
        do {
            let transactionsAfter = try await counter.withConnection { try await BenchStore.transactions(on: $0) }
            let ids = accounts.compactMap { campaigns[$0.clientAccountID] }
            let figures = try await BenchStore.accountFigures(campaignIDs: ids, on: counter)
            let report = try await Self.report(
                figures: figures, plan: plan, committedAt: committedAt, campaignIDs: ids, on: counter,
                transactions: transactionsAfter - transactionsBefore - monitor.ownTransactions,
                noLimits: noLimits, durable: durable, poolSize: settings.database.poolSize,
                maxInFlight: settings.tokens.maxInFlight, apiConnections: settings.api.maxConnections,
                claimBatch: settings.scheduler.claimBatch, concurrentBatches: settings.scheduler.concurrentBatches, cpu: cpu, postgresCPU: postgresCPU)
            await counter.close()
            return report
        } catch {
            await counter.close()
            throw error
        }
    }

    /// The report from each account's audit figures; `committedAt` is when the campaigns' INSERT committed.
    private static func report(figures: [BenchStore.AccountFigures], plan: AccountsPlan, committedAt: Int64, campaignIDs: [Int64],
                               on pool: PostgresPool, transactions: Int64, noLimits: Bool, durable: Bool, poolSize: Int,
                               maxInFlight: Int, apiConnections: Int, claimBatch: Int, concurrentBatches: Int, cpu: Double, postgresCPU: Double?) async throws -> AccountsReport {
        let pushed = figures.filter { $0.firstAt > 0 }
        let firstAt = pushed.map(\.firstAt).min() ?? committedAt
        let lastAt = pushed.map(\.lastAt).max() ?? committedAt
        let deadline = figures.map(\.deadline).max() ?? committedAt
        let accepted = figures.reduce(0) { $0 + $1.accepted }
        let seconds = max(0.001, Double(lastAt - firstAt) / 1_000)
        // While every account was pushing: from the last first push to the first finish.
        let busyFrom = pushed.count == figures.count ? pushed.map(\.firstAt).max() ?? firstAt : firstAt
        let busyUntil = pushed.count == figures.count ? pushed.map(\.lastAt).min() ?? lastAt : lastAt
        let busyRPS: Double
        if busyUntil - busyFrom >= 1_000 {
            let inside = try await BenchStore.accepted(campaignIDs: campaignIDs, from: busyFrom, until: busyUntil, on: pool)
            busyRPS = Double(inside) / (Double(busyUntil - busyFrom) / 1_000)
        } else {
            busyRPS = Double(accepted) / seconds
        }
        let accounts = figures.map { figure in
            let finished = figure.accepted >= Int64(plan.recordsPerAccount)
            return AccountsReport.Account(
                clientAccountID: figure.clientAccountID, accepted: Int(figure.accepted), rateLimited: Int(figure.rateLimited),
                firstPushMs: figure.firstAt > 0 ? figure.firstAt - committedAt : nil,
                completionMs: finished ? figure.lastAt - committedAt : nil,
                onTime: finished && figure.lastAt <= figure.deadline)
        }
        return AccountsReport(
            plan: plan, noLimits: noLimits, durable: durable, poolSize: poolSize, maxInFlight: maxInFlight,
            apiConnections: apiConnections, claimBatch: claimBatch, concurrentBatches: concurrentBatches, accounts: accounts,
            deadlineMs: deadline - committedAt,
            neededRPS: Double(plan.totalRecords) / max(0.001, Double(deadline - firstAt) / 1_000),
            busyRPS: busyRPS, achievedRPS: Double(accepted) / seconds, seconds: seconds,
            rateLimited: Int(figures.reduce(0) { $0 + $1.rateLimited }), errors: Int(figures.reduce(0) { $0 + $1.errors }),
            lateRecords: Int(figures.reduce(0) { $0 + $1.late }), transactions: transactions,
            cpuSeconds: cpu, postgresCPUSeconds: postgresCPU, peakRSSMB: peakRSSMB())
    }
}

/// Inserts every account's campaign in one transaction once the planner is up, follows their
/// progress on standard error, and returns (stopping the group) when every record has a final
/// state or time is up.
private final class AccountsMonitor: Service, Sendable {
    let pool: PostgresPool
    let accounts: [(clientAccountID: UUID, labelID: UUID)]
    let plan: AccountsPlan
    let planner: Leader
    let clock: SystemClock
    let timeoutMs: Int64
    private struct State {
        var campaigns: [UUID: Int64]?
        var committedAt: Int64?
        var ownTransactions: Int64 = 0
        var failure: String?
    }
    private let state = Mutex(State())

    init(pool: PostgresPool, accounts: [(clientAccountID: UUID, labelID: UUID)], plan: AccountsPlan, planner: Leader,
         clock: SystemClock, timeoutMs: Int64) {
        self.pool = pool
        self.accounts = accounts
        self.plan = plan
        self.planner = planner
        self.clock = clock
        self.timeoutMs = timeoutMs
    }

    /// Each account's campaign, once inserted.
    var campaigns: [UUID: Int64]? { state.withLock { $0.campaigns } }
    /// When the INSERT committed (epoch ms).
    var committedAt: Int64? { state.withLock { $0.committedAt } }
    /// Transactions the monitor itself ran (the INSERT and its progress reads).
    var ownTransactions: Int64 { state.withLock { $0.ownTransactions } }
    /// Why it stopped before inserting, if it did.
    var failure: String? { state.withLock { $0.failure } }

    func run() async throws {
        // The planner's first cycle shows the services are up; the INSERT then wakes it by NOTIFY.
        let startedAt = clock.now()
        while planner.lastCycleAt == 0 {
            if Task.isShuttingDownGracefully { return }
            if clock.now() - startedAt > 120_000 {
                state.withLock { $0.failure = "the planner did not complete its first cycle within 120 s" }
                return
            }
            try await clock.sleep(milliseconds: 20)
        }
        // Planned as late as possible, each window's push starts about now: it starts after its
        // lead plus the push time of the plan, less a second for the planner to act.
        let leadMs: Int64 = 30_000
        let startsAt = clock.now() + leadMs + plan.pushMs - 1_000
        progress("inserting \(accounts.count) campaigns of \(plan.recordsPerAccount) records (one per account)")
        let campaigns = try await BenchStore.insertAccountCampaigns(accounts, startsAt: startsAt, receivers: plan.recordsPerAccount, on: pool)
        let committedAt = clock.now()
        state.withLock { $0.campaigns = campaigns; $0.committedAt = committedAt; $0.ownTransactions = 1 }
        let ids = Array(campaigns.values)
        let total = Int64(plan.totalRecords)
        var lastReport = committedAt
        var lastAccepted: Int64 = 0
        while !Task.isShuttingDownGracefully {
            try await clock.sleep(milliseconds: 250)
            // The windows' own counters (kept by the result writer), not a count over the queue.
            let counters = try? await BenchStore.progress(campaignIDs: ids, on: pool)
            state.withLock { $0.ownTransactions += 1 }
            guard let counters else { continue }
            let now = clock.now()
            if now - lastReport >= 5_000 {
                let rate = Double(counters.accepted - lastAccepted) / (Double(now - lastReport) / 1_000)
                progress("accepted \(counters.accepted) / \(total) (\(Int(rate)) records/s)")
                lastReport = now
                lastAccepted = counters.accepted
            }
            if counters.materialised == total && counters.accepted + counters.failed == total { return }
            if now - committedAt > timeoutMs {
                progress("timed out with \(counters.accepted) of \(total) accepted")
                return
            }
        }
    }
}
