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
import TokenPool
import UnixSignals

/// `callwindow bench pipeline`: the daemon's services end to end — planner, queue, dispatcher,
/// token pool, audit — on one window of N records due now, until every record is accepted.
public struct PipelineBenchmark: Sendable {
    /// Records in the window (1 caller × N receivers).
    public var records = 100_000
    /// Tokens in the pool.
    public var tokens = 10
    /// The transport pushed with.
    public var transport: Transport = .v1
    /// The sandbox enforces no limit and the pool paces nothing: measures the engine.
    public var noLimits = false
    /// An API to push to instead of an in-process sandbox.
    public var apiURL: String?
    /// Run the sandbox as a `callwindow sandbox` process of its own (this binary), so that its
    /// CPU is measured apart from the daemon's.
    public var sandboxProcess = false
    /// A database to insert the campaign into instead of a private cluster.
    public var databaseURL: String?
    /// Deliveries claimed at once (`scheduler.claim_batch`).
    public var claimBatch = 500
    /// Claimed batches out at once (`scheduler.concurrent_batches`).
    public var concurrentBatches = 2
    /// Seconds before giving up (default: five times the time the limits need, at least 120).
    public var timeout: Int?

    /// The defaults of `callwindow bench pipeline`.
    public init() {}

    /// Runs the benchmark: a private durable cluster (unless `databaseURL`) and an in-process
    /// sandbox (unless `apiURL`), both stopped afterwards.
    public func run() async throws -> PipelineReport {
        if databaseURL == nil { progress("starting a private PostgreSQL cluster (durable)") }
        return try await withBenchDatabase(url: databaseURL, fast: false) { database, cluster in
            try await measure(database, cluster: cluster)
        }
    }

    private func measure(_ database: PostgresConfiguration, cluster: PrivateCluster?) async throws -> PipelineReport {

        let setup = try await PostgresConnection.connect(database)
        _ = try await Migrator(migrations: Migration.load(from: benchSQLDirectory())).migrate(setup)
        let durable = try await BenchStore.isDurable(on: setup)
        await setup.close()

        let report: PipelineReport
        if let apiURL {
            report = try await measure(baseURL: apiURL, account: BenchAccount.fromEnvironment(), database: database,
                                       transport: transport, durable: durable, cluster: cluster, accountOutlivesRun: true)
        } else if sandboxProcess {
            let account = BenchAccount.random()
            report = try await withSandboxProcess(account: account) { url, pid in
                let before = processCPUSeconds(pid: pid)
                var report = try await measure(baseURL: url, account: account, database: database,
                                               transport: transport, durable: durable, cluster: cluster)
                report.sandboxCPUSeconds = processCPUSeconds(pid: pid) - before
                return report
            }
        } else {
            let account = BenchAccount.random()
            let sandbox = try account.inProcessSandbox(enforceLimits: !noLimits)
            report = try await sandbox.withRunning { port in
                try await measure(baseURL: "http://127.0.0.1:\(port)", account: account, database: database,
                                  transport: transport, durable: durable, cluster: cluster)
            }
        }
        return report
    }

    /// Runs `body` with a `callwindow sandbox` process serving `account` (its URL and pid), and
    /// stops the process afterwards.
    private func withSandboxProcess<T: Sendable>(account: BenchAccount, _ body: (String, Int32) async throws -> T) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("callwindow-bench-sandbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("sandbox.yaml")
        try account.sandboxConfigurationYAML(enforceLimits: !noLimits).write(to: config, atomically: true, encoding: .utf8)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let child = try ChildProcess(executable, ["sandbox", "--config", config.path, "--port", "0"])
        progress("started a sandbox process (pid \(child.pid))")
        do {
            var url: String?
            for _ in 0..<500 where url == nil {
                // It prints "listening on http://HOST:PORT" once it serves.
                if let start = child.stdout.range(of: "http://") {
                    url = String(child.stdout[start.lowerBound...].prefix { !$0.isWhitespace })
                } else if !child.isRunning {
                    break
                } else {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            guard let url else { throw BenchmarkError("the sandbox process did not start: \(child.stderr.suffix(500))") }
            let result = try await body(url, child.pid)
            child.signal(SIGTERM)
            _ = await child.wait()
            return result
        } catch {
            child.signal(SIGKILL)
            _ = await child.wait()
            throw error
        }
    }

    /// `accountOutlivesRun`: the account is the API's (`--api-url`), not one made up for this
    /// run, so tokens stored for it by an earlier run may be in the database.
    private func measure(baseURL: String, account: BenchAccount, database: PostgresConfiguration, transport: Transport,
                         durable: Bool, cluster: PrivateCluster?, accountOutlivesRun: Bool = false) async throws -> PipelineReport {
        let clock = SystemClock()
        var settings = Configuration()
        settings.tokens.max = tokens
        settings.api.transport = transport
        settings.tokens.maxInFlight = noLimits ? max(64, tokens * 32) : settings.tokens.maxInFlight
        settings.scheduler.claimBatch = claimBatch
        settings.scheduler.concurrentBatches = concurrentBatches
        settings.database.poolSize = 4 + concurrentBatches
        // The daemon's session settings (JIT off, statement timeouts), so the bench measures what it does.
        let sessions = Daemon.sessions(database)
        let pool = PostgresPool(configuration: sessions.queue, maxConnections: settings.database.poolSize)
        let api = APIClient(options: .init(
            baseURL: baseURL, connectTimeoutMs: 1_000, requestTimeoutMs: 5_000, maxConnectionsPerHost: max(16, tokens * 4)))
        let keyVariable = settings.tokens.keyEnv
        var environment = ProcessInfo.processInfo.environment
        let generatedKey = (environment[keyVariable] ?? "").isEmpty
        if generatedKey { environment[keyVariable] = TokenCipher.generateKeyBase64() }
        let cipher = try TokenCipher.fromEnvironment(variable: keyVariable, environment: environment)
        if generatedKey && accountOutlivesRun {
            // Tokens stored by an earlier run are sealed under a key this run does not have: the
            // pool would only warn that it cannot open them, and push nothing until the timeout.
            let stored = try await BenchStore.storedTokens(clientAccountID: account.clientAccountID, on: pool)
            if stored > 0 {
                await pool.close()
                try? await api.shutdown()
                throw BenchmarkError(
                    "the database holds \(stored) unexpired token(s) of client account \(account.clientAccountID.uuidString.lowercased()) "
                    + "and \(keyVariable) is not set: set it to the key they were stored under, or omit --database-url to use a private cluster "
                    + "(tokens stored under a key a bench generated cannot be read again; they expire 60 minutes after their mint)")
            }
            if cluster == nil {
                progress("\(keyVariable) is not set: the tokens this run mints are stored under a key of its own, which ends with the run; "
                         + "set \(keyVariable) to run again against this database before they expire")
            }
        }
        let instance = "bench-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(6).lowercased())"
        let scheduler = try Daemon.schedulerServices(
            settings: settings, database: sessions.leader, pool: pool, api: api, cipher: cipher,
            instance: instance, credentials: [(account.clientAccountID, account.key)], clock: clock, enforceLimits: !noLimits)

        try await BenchStore.ensureLabel(clientAccountID: account.clientAccountID, labelID: account.labelID, on: pool)

        let ceiling = Capacity(tokens: tokens, transport: transport, utilisation: 1).recordsPerSecond
        let planned = Capacity(tokens: tokens, transport: transport, utilisation: settings.scheduler.utilisation,
                               startupMs: Int64(settings.scheduler.pushMarginSeconds) * 1000)
        let limitSeconds = Double(records) / ceiling
        let serverCPU: (@Sendable () -> Double)? = cluster.map { cluster in
            let data = cluster.directory.appendingPathComponent("data").path
            return { @Sendable in postgresCPUSeconds(dataDirectory: data) }
        }
        let monitor = Monitor(
            pool: pool, records: records, clientAccountID: account.clientAccountID, labelID: account.labelID, planned: planned,
            planner: scheduler.planner, clock: clock,
            timeoutMs: Int64(timeout ?? max(120, Int(limitSeconds * 5))) * 1_000,
            serverCPU: serverCPU)
        let cpuBefore = cpuSeconds()
        let postgresBefore = monitor.serverCPU?()
        var configuration = ServiceGroupConfiguration(
            services: (scheduler.all + [monitor]).map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigint, .sigterm],
            logger: Logger(label: "callwindow.bench"))
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        try await ServiceGroup(configuration: configuration).run()
        let cpu = cpuSeconds() - cpuBefore
        let postgresCPU = postgresBefore.flatMap { before in monitor.serverCPU.map { $0() - before } }
        let postgresInsertCPU = postgresBefore.flatMap { before in monitor.serverCPUAtInsert.map { $0 - before } }
        try await api.shutdown()
        guard let campaign = monitor.campaign, let committedAt = monitor.committedAt else {
            await pool.close()
            throw BenchmarkError("the bench stopped before its campaign was inserted")
        }

        let figures = try await BenchStore.figures(campaignID: campaign, on: pool)
        await pool.close()
        let accepted = figures.accepted
        let firstAt = figures.firstAt
        let lastAt = figures.lastAt
        let seconds = max(0.001, Double(lastAt - firstAt) / 1_000)
        let databaseMs = scheduler.dispatchers.reduce(0) { $0 + $1.counts.databaseMs }
        let achieved = Double(accepted) / seconds
        return PipelineReport(
            sender: BenchReport(
                tokens: tokens, transport: transport.rawValue, ceilingRPS: noLimits ? nil : ceiling, achievedRPS: achieved,
                utilisation: noLimits ? nil : achieved / ceiling, accepted: Int(accepted),
                rateLimited: Int(figures.rateLimited), errors: Int(figures.errors),
                p50Ms: figures.p50Ms, p99Ms: figures.p99Ms, cpuSeconds: cpu, peakRSSMB: peakRSSMB()),
            records: records, seconds: seconds, durable: durable,
            firstPushMs: accepted > 0 ? firstAt - committedAt : nil, materialisedMs: monitor.materialisedAt.map { $0 - committedAt },
            lateRecords: Int(figures.late), maxLatenessMs: max(0, figures.latenessMs),
            databaseShare: databaseMs / (seconds * 1_000), postgresCPUSeconds: postgresCPU, postgresInsertCPUSeconds: postgresInsertCPU,
            claimBatch: claimBatch, concurrentBatches: concurrentBatches)
    }
}

/// Inserts the bench campaign once the planner is up, follows its progress on standard error,
/// and returns (stopping the group) when every record has a final state or time is up.
private final class Monitor: Service, Sendable {
    let pool: PostgresPool
    let records: Int
    let clientAccountID: UUID
    let labelID: UUID
    let planned: Capacity
    let planner: Leader
    let clock: SystemClock
    let timeoutMs: Int64
    /// PostgreSQL's CPU seconds so far, read right after the campaign's INSERT commits (`nil`:
    /// not measured).
    let serverCPU: (@Sendable () -> Double)?
    private let state = Mutex<(campaign: Int64?, committedAt: Int64?, materialisedAt: Int64?, serverCPUAtInsert: Double?)>(
        (nil, nil, nil, nil))

    init(pool: PostgresPool, records: Int, clientAccountID: UUID, labelID: UUID, planned: Capacity, planner: Leader,
         clock: SystemClock, timeoutMs: Int64, serverCPU: (@Sendable () -> Double)?) {
        self.serverCPU = serverCPU
        self.pool = pool
        self.records = records
        self.clientAccountID = clientAccountID
        self.labelID = labelID
        self.planned = planned
        self.planner = planner
        self.clock = clock
        self.timeoutMs = timeoutMs
    }

    var campaign: Int64? { state.withLock { $0.campaign } }
    var committedAt: Int64? { state.withLock { $0.committedAt } }
    var materialisedAt: Int64? { state.withLock { $0.materialisedAt } }
    var serverCPUAtInsert: Double? { state.withLock { $0.serverCPUAtInsert } }

    func run() async throws {
        // The planner's first cycle shows the services are up; the insert then wakes it by NOTIFY.
        while planner.lastCycleAt == 0 {
            try await clock.sleep(milliseconds: 20)
            if Task.isShuttingDownGracefully { return }
        }
        // Planned as late as possible, the window's push starts about now: it starts after its
        // lead plus the time the planned capacity needs, less a second for the planner to act.
        let leadMs: Int64 = 30_000
        let startsAt = clock.now() + leadMs + planned.pushDuration(records: records) - 1_000
        progress("inserting a campaign of \(records) records")
        let campaign = try await BenchStore.insertCampaign(clientAccountID: clientAccountID, labelID: labelID, startsAt: startsAt,
                                                           receivers: records, on: pool)
        let committedAt = clock.now()
        let serverCPUAtInsert = serverCPU?()
        state.withLock { $0 = (campaign, committedAt, nil, serverCPUAtInsert) }
        var lastReport = committedAt
        var lastAccepted: Int64 = 0
        while !Task.isShuttingDownGracefully {
            try await clock.sleep(milliseconds: 250)
            // The window's own counters (kept by the result writer), not a count over the queue:
            // the bench should not load the database it measures.
            guard let counters = try? await BenchStore.progress(campaignID: campaign, on: pool) else { continue }
            let total = counters.materialised
            let accepted = counters.accepted
            let failed = counters.failed
            let now = clock.now()
            if total == Int64(records), materialisedAt == nil {
                state.withLock { $0.materialisedAt = now }
            }
            if now - lastReport >= 5_000 {
                let rate = Double(accepted - lastAccepted) / (Double(now - lastReport) / 1_000)
                progress("accepted \(accepted) / \(records) (\(Int(rate)) records/s)")
                lastReport = now
                lastAccepted = accepted
            }
            if total == Int64(records) && accepted + failed == total { return }
            if now - committedAt > timeoutMs {
                progress("timed out with \(accepted) of \(records) accepted")
                return
            }
        }
    }
}

