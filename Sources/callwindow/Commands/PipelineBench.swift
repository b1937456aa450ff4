import ArgumentParser
import CallRecordAPI
import Config
import Foundation
import Logging
import Planning
import Postgres
import Sandbox
import Scheduler
import ServiceLifecycle
import Store
import Synchronization
import TokenPool
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `callwindow bench pipeline`: the daemon's services end to end — planner, queue, dispatcher,
/// token pool, audit — on one window of N records due now, until every record is accepted.
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Push one window of N records due now through the daemon's services and report rate, utilisation and costs.",
        discussion: """
            Starts a private PostgreSQL cluster (durable: fsync and synchronous_commit on) unless \
            --database-url is given, and an in-process sandbox unless --api-url is given (then the \
            account comes from CALLWINDOW_BENCH_CLIENT_ACCOUNT_ID, CALLWINDOW_BENCH_KEY_ID, \
            CALLWINDOW_BENCH_API_KEY and CALLWINDOW_BENCH_LABEL_ID, default the demo account of \
            config/sandbox.yaml). It migrates the database, inserts a campaign of 1 caller × N \
            receivers whose window is due now (lead 30 s), runs the planner and the dispatcher as \
            `callwindow run` does, and reads its figures from the audit trail. CPU and peak RSS are \
            this process's, so they include an in-process sandbox; PostgreSQL's CPU is reported \
            separately for a private cluster.
            """
    )

    @Option(help: "Records in the window (1 caller × N receivers).")
    var records: Int = 100_000

    @Option(help: "Tokens in the pool.")
    var tokens: Int = 10

    @Option(help: "v1, v2 or batch.")
    var transport: String = "v1"

    @Flag(name: .customLong("no-limits"), help: "Sandbox enforces no limit and the pool paces nothing: measures the engine.")
    var noLimits = false

    @Option(name: .customLong("api-url"), help: "Use this API instead of an in-process sandbox.")
    var apiURL: String?

    @Option(name: .customLong("database-url"), help: "Use this database (a campaign is inserted into it) instead of a private cluster.")
    var databaseURL: String?

    @Option(name: .customLong("claim-batch"), help: "Deliveries claimed at once (scheduler.claim_batch).")
    var claimBatch: Int = 500

    @Option(name: .customLong("concurrent-batches"), help: "Claimed batches out at once (scheduler.concurrent_batches).")
    var concurrentBatches: Int = 2

    @Option(help: "Give up after this many seconds (default: five times the time the limits need, at least 120).")
    var timeout: Int?

    @Flag(name: .long, help: "Print the report as one JSON object on the last line as well.")
    var json = false

    func validate() throws {
        guard let transport = Transport(rawValue: transport) else { throw ValidationError("--transport must be v1, v2 or batch") }
        guard records >= 1 && records <= 10_000_000 else { throw ValidationError("--records must be between 1 and 10000000") }
        guard tokens >= 1 && tokens <= 18 else {
            throw ValidationError("--tokens must be between 1 and 18 (10 mints per 30 min keep at most 18 tokens of 60 min alive)")
        }
        guard claimBatch >= 1 && claimBatch <= 10_000 else { throw ValidationError("--claim-batch must be between 1 and 10000") }
        guard concurrentBatches >= 1 && concurrentBatches <= 8 else { throw ValidationError("--concurrent-batches must be between 1 and 8") }
        _ = transport
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: false)
            handler.logLevel = .warning
            return handler
        }
        do {
            try await benchmark()
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail(error)
        }
    }

    private func benchmark() async throws {
        let transport = Transport(rawValue: self.transport) ?? .v1
        let cluster: PrivateCluster?
        let database: PostgresConfiguration
        if let databaseURL {
            cluster = nil
            database = try PostgresConfiguration(databaseURL)
        } else {
            progress("starting a private PostgreSQL cluster (durable)")
            let started = try PrivateCluster.start(fast: false)
            cluster = started
            database = try PostgresConfiguration(started.url)
        }
        defer { cluster?.stop() }

        let setup = try await PostgresConnection.connect(database)
        _ = try await Migrator(migrations: Migration.load(from: benchSQLDirectory())).migrate(setup)
        let durable = try await BenchStore.isDurable(on: setup)
        await setup.close()

        let report: PipelineReport
        if let apiURL {
            report = try await measure(baseURL: apiURL, account: Account.fromEnvironment(), database: database,
                                       transport: transport, durable: durable, cluster: cluster)
        } else {
            let account = Account.random()
            let sandbox = try account.inProcessSandbox(enforceLimits: !noLimits)
            report = try await sandbox.withRunning { port in
                try await measure(baseURL: "http://127.0.0.1:\(port)", account: account, database: database,
                                  transport: transport, durable: durable, cluster: cluster)
            }
        }
        print(report.text)
        if json { print(report.json) }
        guard report.accepted == records else { throw ExitCode(1) }
    }

    private func measure(baseURL: String, account: Account, database: PostgresConfiguration, transport: Transport,
                         durable: Bool, cluster: PrivateCluster?) async throws -> PipelineReport {
        let clock = SystemClock()
        var settings = Configuration()
        settings.tokens.max = tokens
        settings.tokens.maxInFlight = noLimits ? max(64, tokens * 32) : settings.tokens.maxInFlight
        settings.scheduler.claimBatch = claimBatch
        settings.scheduler.concurrentBatches = concurrentBatches
        settings.database.poolSize = 4 + concurrentBatches
        let pool = PostgresPool(configuration: database, maxConnections: settings.database.poolSize)
        let api = APIClient(options: .init(
            baseURL: baseURL, connectTimeoutMs: 1_000, requestTimeoutMs: 5_000, maxConnectionsPerHost: max(16, tokens * 4)))
        let keyVariable = settings.tokens.keyEnv
        var environment = ProcessInfo.processInfo.environment
        if (environment[keyVariable] ?? "").isEmpty { environment[keyVariable] = TokenCipher.generateKeyBase64() }
        let cipher = try TokenCipher.fromEnvironment(variable: keyVariable, environment: environment)
        let instance = "bench-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(6).lowercased())"
        let scheduler = try Daemon.schedulerServices(
            settings: settings, database: database, pool: pool, api: api, cipher: cipher, transport: transport,
            instance: instance, credentials: [(account.clientAccountID, account.key)], clock: clock, enforceLimits: !noLimits)

        try await BenchStore.ensureLabel(clientAccountID: account.clientAccountID, labelID: account.labelID, on: pool)

        let ceiling = Capacity(tokens: tokens, transport: transport, utilisation: 1).recordsPerSecond
        let planned = Capacity(tokens: tokens, transport: transport, utilisation: settings.scheduler.utilisation,
                               startupMs: Int64(settings.scheduler.pushMarginSeconds) * 1000)
        let limitSeconds = Double(records) / ceiling
        let monitor = Monitor(
            pool: pool, records: records, clientAccountID: account.clientAccountID, labelID: account.labelID, planned: planned,
            planner: scheduler.planner, clock: clock,
            timeoutMs: Int64(timeout ?? max(120, Int(limitSeconds * 5))) * 1_000)
        let cpuBefore = cpuSeconds()
        let postgresBefore = cluster.map { postgresCPUSeconds(dataDirectory: $0.directory.appendingPathComponent("data").path) }
        var configuration = ServiceGroupConfiguration(
            services: (scheduler.all + [monitor]).map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigint, .sigterm],
            logger: Logger(label: "callwindow.bench"))
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        try await ServiceGroup(configuration: configuration).run()
        let cpu = cpuSeconds() - cpuBefore
        let postgresCPU = cluster.flatMap { cluster in
            postgresBefore.map { postgresCPUSeconds(dataDirectory: cluster.directory.appendingPathComponent("data").path) - $0 }
        }
        try await api.shutdown()
        guard let campaign = monitor.campaign, let committedAt = monitor.committedAt else {
            await pool.close()
            throw ValidationError("the bench stopped before its campaign was inserted")
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
            firstPushMs: firstAt - committedAt, materialisedMs: monitor.materialisedAt.map { $0 - committedAt },
            lateRecords: Int(figures.late), maxLatenessMs: max(0, figures.latenessMs),
            databaseShare: databaseMs / (seconds * 1_000), postgresCPUSeconds: postgresCPU,
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
    let planner: PlannerService
    let clock: SystemClock
    let timeoutMs: Int64
    private let state = Mutex<(campaign: Int64?, committedAt: Int64?, materialisedAt: Int64?)>((nil, nil, nil))

    init(pool: PostgresPool, records: Int, clientAccountID: UUID, labelID: UUID, planned: Capacity, planner: PlannerService,
         clock: SystemClock, timeoutMs: Int64) {
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
        state.withLock { $0 = (campaign, committedAt, nil) }
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

/// The pipeline bench's figures: the sender bench's, plus the pipeline's own.
struct PipelineReport: Encodable {
    var sender: BenchReport
    var records: Int
    var seconds: Double
    var durable: Bool
    var firstPushMs: Int64
    var materialisedMs: Int64?
    var lateRecords: Int
    var maxLatenessMs: Int64
    var databaseShare: Double
    var postgresCPUSeconds: Double?
    var claimBatch: Int
    var concurrentBatches: Int

    var accepted: Int { sender.accepted }

    enum CodingKeys: String, CodingKey {
        case records, seconds, durable
        case firstPushMs = "first_push_ms", materialisedMs = "materialised_ms", lateRecords = "late_records"
        case maxLatenessMs = "max_lateness_ms", databaseShare = "database_share", postgresCPUSeconds = "postgres_cpu_seconds"
        case claimBatch = "claim_batch", concurrentBatches = "concurrent_batches"
    }

    func encode(to encoder: any Encoder) throws {
        try sender.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(records, forKey: .records)
        try c.encode(BenchReport.round(seconds), forKey: .seconds)
        try c.encode(durable, forKey: .durable)
        try c.encode(firstPushMs, forKey: .firstPushMs)
        try c.encode(materialisedMs, forKey: .materialisedMs)
        try c.encode(lateRecords, forKey: .lateRecords)
        try c.encode(maxLatenessMs, forKey: .maxLatenessMs)
        try c.encode((databaseShare * 1_000).rounded() / 1_000, forKey: .databaseShare)
        try c.encode(postgresCPUSeconds.map(BenchReport.round), forKey: .postgresCPUSeconds)
        try c.encode(claimBatch, forKey: .claimBatch)
        try c.encode(concurrentBatches, forKey: .concurrentBatches)
    }

    var text: String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        return sender.text + "\n" + """
            records       \(records) in one window (\(claimBatch) per claim, \(concurrentBatches) batches out at once)
            seconds       \(fixed(seconds, 2)) from the first push to the last answer
            first push    \(firstPushMs) ms after the campaign's INSERT committed\(materialisedMs.map { " (all deliveries created after \($0) ms)" } ?? "")
            late          \(lateRecords) records accepted after starts_at − lead (worst by \(maxLatenessMs) ms)
            database      \(fixed(databaseShare * 100)) % of the push time in claims and result writes (summed over batches)
            postgres cpu  \(postgresCPUSeconds.map { fixed($0, 2) + " s (server processes)" } ?? "n/a (not a private cluster)")
            durable       \(durable ? "yes (fsync and synchronous_commit on)" : "no")
            """
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}

/// One progress line on standard error.
func progress(_ line: String) {
    FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
}

/// CPU seconds (user + system) of the PostgreSQL server whose data directory is `dataDirectory`:
/// the postmaster, its live children, and the children it has reaped.
func postgresCPUSeconds(dataDirectory: String) -> Double {
    guard let pidText = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
          let postmaster = pidText.split(separator: "\n").first.flatMap({ Int($0) }) else { return 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = 0.0
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        guard let pid = Int(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        // Fields after "(comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 15, let ppid = Int(fields[1]) else { continue }
        guard pid == postmaster || ppid == postmaster else { continue }
        let utime = Double(fields[11]) ?? 0, stime = Double(fields[12]) ?? 0
        let cutime = pid == postmaster ? Double(fields[13]) ?? 0 : 0
        let cstime = pid == postmaster ? Double(fields[14]) ?? 0 : 0
        total += (utime + stime + cutime + cstime) / ticks
    }
    return total
}
