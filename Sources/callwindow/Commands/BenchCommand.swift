import ArgumentParser
import CallRecordAPI
import Foundation
import Logging
import Planning
import Postgres
import Sandbox
import Store
import Synchronization
import TokenPool

#if canImport(Glibc)
import Glibc
#endif

/// `callwindow bench`: benchmarks that print a report (and JSON), not timed tests.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure parts of CallWindow and print a report.",
        subcommands: [SenderBench.self, PipelineBench.self, PostgresBench.self, PlanningBench.self]
    )
}

/// `callwindow bench sender`: pushes synthetic valid records through a token pool as fast as
/// it allows for S seconds and reports the achieved rate against the API's ceiling.
struct SenderBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sender",
        abstract: "Push synthetic records through the token pool as fast as the limits allow.",
        discussion: """
            Starts an in-process sandbox on a free port unless --api-url is given (then the account comes \
            from CALLWINDOW_BENCH_CLIENT_ACCOUNT_ID, CALLWINDOW_BENCH_KEY_ID, CALLWINDOW_BENCH_API_KEY and \
            CALLWINDOW_BENCH_LABEL_ID, default the demo account of config/sandbox.yaml), and a private \
            PostgreSQL cluster for the token ledger unless --database-url is given (found as \
            $CALLWINDOW_PGCLUSTER or scripts/pgcluster above the executable or the working folder). \
            An ephemeral token key is generated when CALLWINDOW_TOKEN_KEY is not set. CPU seconds and \
            peak RSS are the whole process's, so they include the in-process sandbox.
            """
    )

    @Option(name: .long, help: "Tokens in the pool.")
    var tokens: Int = 1

    @Option(name: .long, help: "Seconds to push for.")
    var seconds: Int = 60

    @Option(name: .long, help: "v1, v2 or batch.")
    var transport: String = "v1"

    @Flag(name: .customLong("no-limits"), help: "Sandbox enforces no limit and the pool paces nothing: measures the engine.")
    var noLimits = false

    @Option(name: .customLong("api-url"), help: "Use this API instead of an in-process sandbox.")
    var apiURL: String?

    @Option(name: .customLong("database-url"), help: "Use this database for the token ledger instead of a private cluster.")
    var databaseURL: String?

    @Flag(name: .long, help: "Print the report as one JSON object on the last line as well.")
    var json = false

    func validate() throws {
        guard Transport(rawValue: transport) != nil else { throw ValidationError("--transport must be v1, v2 or batch") }
        guard tokens >= 1 else { throw ValidationError("--tokens must be at least 1") }
        guard seconds >= 1 else { throw ValidationError("--seconds must be at least 1") }
    }

    func run() async throws {
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
        var cluster: PrivateCluster?
        let database: PostgresConfiguration
        if let databaseURL {
            database = try PostgresConfiguration(databaseURL)
        } else {
            let started = try PrivateCluster.start()
            cluster = started
            database = try PostgresConfiguration(started.url)
        }
        defer { cluster?.stop() }

        let connection = try await PostgresConnection.connect(database)
        _ = try await Migrator(migrations: Migration.load(from: benchSQLDirectory())).migrate(connection)
        await connection.close()
        let db = PostgresPool(configuration: database, maxConnections: 4)

        let keyVariable = "CALLWINDOW_TOKEN_KEY"
        var environment = ProcessInfo.processInfo.environment
        if (environment[keyVariable] ?? "").isEmpty {
            environment[keyVariable] = TokenCipher.generateKeyBase64()
        }
        let store = TokenStore(pool: db, cipher: try TokenCipher.fromEnvironment(variable: keyVariable, environment: environment))

        let report: BenchReport
        if let apiURL {
            let account = Account.fromEnvironment()
            report = try await measure(baseURL: apiURL, account: account, store: store, transport: transport)
        } else {
            let account = Account.random()
            let sandbox = try account.inProcessSandbox(enforceLimits: !noLimits)
            report = try await sandbox.withRunning { port in
                try await measure(baseURL: "http://127.0.0.1:\(port)", account: account, store: store, transport: transport)
            }
        }
        await db.close()
        print(report.text)
        if json { print(report.json) }
    }

    /// Warms the pool up to `tokens`, then pushes for `seconds` and measures.
    private func measure(baseURL: String, account: Account, store: TokenStore, transport: Transport) async throws -> BenchReport {
        let clock = SystemClock()
        let api = APIClient(options: .init(
            baseURL: baseURL, connectTimeoutMs: 1_000, requestTimeoutMs: 3_000, maxConnectionsPerHost: max(16, tokens * 4)
        ))
        var options = transport == .batch ? TokenPoolOptions.batch(maxTokens: tokens) : TokenPoolOptions(maxTokens: tokens)
        options.enforceLimits = !noLimits
        options.maxInFlight = noLimits ? max(64, tokens * 32) : 256
        var logger = Logger(label: "callwindow.bench")
        logger.logLevel = .warning
        let pool = try TokenPool(
            configuration: .init(
                clientAccountID: account.clientAccountID, key: account.key, transport: transport,
                instance: "bench-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
            ),
            options: options, ledger: store, api: api, clock: clock, logger: logger
        )
        let held = await pool.prepare(tokens: tokens)
        guard held == tokens else {
            await pool.shutdown()
            try await api.shutdown()
            throw TokenPoolError(.noToken, "only \(held) of \(tokens) tokens could be leased or minted (mint budget or API refused)")
        }

        let ceiling: Double? = noLimits ? nil : Capacity(tokens: tokens, transport: transport, utilisation: 1).recordsPerSecond
        let tally = Tally()
        let cpuBefore = cpuSeconds()
        let start = clock.now()
        let end = start + Int64(seconds) * 1_000
        tally.window = (start, end)
        // Two feeders keep the pool saturated: one's chunk drains while the other's fills in.
        let chunk = noLimits ? 2_000 : max(50, Int((ceiling ?? 1_000) / 2))
        await withTaskGroup(of: Void.self) { group in
            for feeder in 0..<2 {
                group.addTask {
                    var base = feeder * 1_000_000_000
                    while clock.now() < end, !Task.isCancelled {
                        defer { base += chunk }
                        let now = clock.now()
                        let records = (0..<chunk).map { n in
                            CallRecord(
                                caller: "4930901820", receiver: String(4_915_100_000_000 + base + n),
                                startsAt: now + 3_600_000, endsAt: now + 7_200_000, labelID: account.labelID
                            )
                        }
                        _ = await pool.send(records, onAttempt: tally.record)
                    }
                }
            }
            group.addTask {
                try? await clock.sleep(until: end)
            }
            await group.next()
            // Stop when the time is up: unsent records of the current chunks are abandoned.
            try? await clock.sleep(until: end)
            group.cancelAll()
        }
        let cpu = cpuSeconds() - cpuBefore
        await pool.shutdown()
        try await api.shutdown()
        return tally.report(tokens: tokens, transport: transport, ceiling: ceiling, seconds: seconds, cpuSeconds: cpu, peakRSSMB: peakRSSMB())
    }
}

/// The account the bench pushes for.
struct Account: Sendable {
    var clientAccountID: UUID
    var key: APIKey
    var labelID: UUID

    /// From `CALLWINDOW_BENCH_*`, defaulting to the demo account of config/sandbox.yaml.
    static func fromEnvironment() -> Account {
        let env = ProcessInfo.processInfo.environment
        func uuid(_ name: String, _ fallback: String) -> UUID {
            env[name].flatMap(UUID.init(uuidString:)) ?? UUID(uuidString: fallback)!
        }
        return Account(
            clientAccountID: uuid("CALLWINDOW_BENCH_CLIENT_ACCOUNT_ID", "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"),
            key: APIKey(
                keyID: uuid("CALLWINDOW_BENCH_KEY_ID", "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0"),
                apiKey: env["CALLWINDOW_BENCH_API_KEY"] ?? "2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1"
            ),
            labelID: uuid("CALLWINDOW_BENCH_LABEL_ID", "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01")
        )
    }
}

extension Account {
    /// A fresh account with a random key and one dynamic label, for an in-process sandbox.
    static func random() -> Account {
        Account(clientAccountID: UUID(), key: APIKey(keyID: UUID(), apiKey: UUID().uuidString.lowercased()), labelID: UUID())
    }

    /// An in-process sandbox on a free port that knows this account and its label.
    func inProcessSandbox(enforceLimits: Bool) throws -> SandboxServer {
        var limits = SandboxConfiguration.Limits()
        limits.enforce = enforceLimits
        return try SandboxServer(
            configuration: SandboxConfiguration(
                clients: [.init(
                    clientAccountID: clientAccountID,
                    apiKeys: [.init(keyID: key.keyID, apiKey: key.apiKey)],
                    labels: [.init(id: labelID, name: "Bench", isDynamic: true)]
                )],
                limits: limits
            ),
            clock: SystemClock(), port: 0
        )
    }
}

/// The migrations folder for the benches: $CALLWINDOW_SQL_DIR, else sql/ found above the
/// executable or the working folder.
func benchSQLDirectory() -> URL {
    if let path = ProcessInfo.processInfo.environment["CALLWINDOW_SQL_DIR"], !path.isEmpty {
        return URL(fileURLWithPath: path)
    }
    return findUpwards("sql/001_campaign_schema.sql")?.deletingLastPathComponent() ?? URL(fileURLWithPath: "sql")
}

/// Attempts counted inside the measuring window.
final class Tally: Sendable {
    private struct Counts {
        var window: (Int64, Int64) = (0, 0)
        var accepted = 0
        var rateLimited = 0
        var errors = 0
        var latencies: [Int64] = []
    }

    private let counts = Mutex(Counts())

    var window: (Int64, Int64) {
        get { counts.withLock { $0.window } }
        set { counts.withLock { $0.window = newValue } }
    }

    @Sendable func record(_ attempt: PushAttempt) {
        let answeredAt = attempt.startedAt + attempt.latencyMs
        counts.withLock { counts in
            // [start, end): requests cut off by the stop at `end` are not counted.
            guard answeredAt >= counts.window.0, answeredAt < counts.window.1 else { return }
            counts.latencies.append(attempt.latencyMs)
            switch attempt.outcome {
            case .accepted: counts.accepted += attempt.recordIndices.count
            case .rateLimited: counts.rateLimited += 1
            default: counts.errors += 1
            }
        }
    }

    func report(tokens: Int, transport: Transport, ceiling: Double?, seconds: Int, cpuSeconds: Double, peakRSSMB: Double) -> BenchReport {
        counts.withLock { counts in
            let sorted = counts.latencies.sorted()
            func percentile(_ p: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)])
            }
            let achieved = Double(counts.accepted) / Double(seconds)
            return BenchReport(
                tokens: tokens, transport: transport.rawValue, ceilingRPS: ceiling, achievedRPS: achieved,
                utilisation: ceiling.map { achieved / $0 }, accepted: counts.accepted, rateLimited: counts.rateLimited,
                errors: counts.errors, p50Ms: percentile(0.5), p99Ms: percentile(0.99),
                cpuSeconds: cpuSeconds, peakRSSMB: peakRSSMB
            )
        }
    }
}

/// The bench's figures, as text and as one JSON object with snake_case names.
struct BenchReport: Encodable {
    var tokens: Int
    var transport: String
    var ceilingRPS: Double?
    var achievedRPS: Double
    var utilisation: Double?
    var accepted: Int
    var rateLimited: Int
    var errors: Int
    var p50Ms: Double
    var p99Ms: Double
    var cpuSeconds: Double
    var peakRSSMB: Double

    enum CodingKeys: String, CodingKey {
        case tokens, transport, accepted, errors
        case ceilingRPS = "ceiling_rps", achievedRPS = "achieved_rps", utilisation
        case rateLimited = "rate_limited", p50Ms = "p50_ms", p99Ms = "p99_ms"
        case cpuSeconds = "cpu_seconds", peakRSSMB = "peak_rss_mb"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(transport, forKey: .transport)
        try c.encode(ceilingRPS.map(Self.round), forKey: .ceilingRPS)  // null with --no-limits
        try c.encode(Self.round(achievedRPS), forKey: .achievedRPS)
        try c.encode(utilisation.map { (($0 * 10_000).rounded()) / 10_000 }, forKey: .utilisation)
        try c.encode(accepted, forKey: .accepted)
        try c.encode(rateLimited, forKey: .rateLimited)
        try c.encode(errors, forKey: .errors)
        try c.encode(p50Ms, forKey: .p50Ms)
        try c.encode(p99Ms, forKey: .p99Ms)
        try c.encode(Self.round(cpuSeconds), forKey: .cpuSeconds)
        try c.encode(Self.round(peakRSSMB), forKey: .peakRSSMB)
    }

    static func round(_ value: Double) -> Double { (value * 100).rounded() / 100 }

    var text: String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        return """
            tokens        \(tokens)
            transport     \(transport)
            ceiling       \(ceilingRPS.map { fixed($0) + " records/s" } ?? "none (--no-limits)")
            achieved      \(fixed(achievedRPS)) records/s
            utilisation   \(utilisation.map { fixed($0 * 100, 2) + " %" } ?? "n/a")
            accepted      \(accepted)
            rate limited  \(rateLimited) (429s seen)
            other errors  \(errors)
            latency       p50 \(fixed(p50Ms, 0)) ms, p99 \(fixed(p99Ms, 0)) ms (ms resolution)
            cpu           \(fixed(cpuSeconds, 2)) s (whole process)
            peak rss      \(fixed(peakRSSMB)) MB
            """
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}

/// User + system CPU seconds of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident set size of this process in MB (Linux reports kilobytes).
func peakRSSMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Looks for `relative` in the folders above the executable, then above the working folder.
func findUpwards(_ relative: String) -> URL? {
    let starts = [
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
        URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
    ]
    for start in starts {
        var folder = start
        for _ in 0..<8 {
            let candidate = folder.appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
    }
    return nil
}

/// A private PostgreSQL cluster started with scripts/pgcluster in a temporary folder, stopped
/// and removed by `stop()`.
struct PrivateCluster {
    let script: URL
    let directory: URL
    let url: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `fast` turns fsync off (for tests and the sender bench); the pipeline bench runs durable.
    static func start(fast: Bool = true) throws -> PrivateCluster {
        let env = ProcessInfo.processInfo.environment
        guard let script = env["CALLWINDOW_PGCLUSTER"].map(URL.init(fileURLWithPath:)) ?? findUpwards("scripts/pgcluster") else {
            throw Failure(description: "scripts/pgcluster not found: pass --database-url or set CALLWINDOW_PGCLUSTER to the script")
        }
        let directory = URL(fileURLWithPath: "/tmp/callwindow-bench-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let output = try runScript(script, ["start", directory.path], fast: fast)
        guard let url = output.split(separator: "\n").last.map(String.init), url.hasPrefix("postgres") else {
            throw Failure(description: "scripts/pgcluster start did not print a database URL")
        }
        return PrivateCluster(script: script, directory: directory, url: url)
    }

    func stop() {
        _ = try? Self.runScript(script, ["stop", directory.path], fast: false)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs the script with its output in a file (the server it starts inherits no pipe), with
    /// posix_spawn and waitpid: Foundation's `Process` was seen never noticing the end of a child
    /// that left a daemon behind.
    static func runScript(_ script: URL, _ arguments: [String], fast: Bool) throws -> String {
        let outputPath = NSTemporaryDirectory() + "pgcluster-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var environment = ProcessInfo.processInfo.environment
        if fast { environment["PGCLUSTER_FAST"] = "1" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = (["/bin/bash", script.path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", &actions, nil, argv, envp) == 0 else {
            throw Failure(description: "cannot run \(script.path)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // Exited normally with status 0 (WIFEXITED && WEXITSTATUS == 0).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw Failure(description: "scripts/pgcluster \(arguments[0]) failed: \(output.split(separator: "\n").last ?? "")")
        }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
