import Foundation
import CallRecordAPI
import Logging
public import Planning
import Postgres
import Processes
import Sandbox
import Store
import TokenPool

/// `callwindow bench sender`: pushes synthetic valid records through a token pool as fast as
/// it allows for `seconds` and reports the achieved rate against the API's ceiling.
public struct SenderBenchmark: Sendable {
    /// Tokens in the pool.
    public var tokens = 1
    /// Seconds to push for.
    public var seconds = 60
    /// The transport pushed with.
    public var transport: Transport = .v1
    /// The sandbox enforces no limit and the pool paces nothing: measures the engine.
    public var noLimits = false
    /// An API to push to instead of an in-process sandbox (the account from `BenchAccount.fromEnvironment()`).
    public var apiURL: String?
    /// A database for the token ledger instead of a private cluster.
    public var databaseURL: String?

    /// The defaults of `callwindow bench sender`.
    public init() {}

    /// Runs the benchmark: a private cluster (unless `databaseURL`) and an in-process sandbox
    /// (unless `apiURL`), both stopped afterwards.
    public func run() async throws -> BenchReport {
        try await withBenchDatabase(url: databaseURL, fast: true) { database, _ in
            try await measure(database)
        }
    }

    private func measure(_ database: PostgresConfiguration) async throws -> BenchReport {
        try await migrateBenchDatabase(database)
        let db = PostgresPool(configuration: database, maxConnections: 4)

        let keyVariable = "CALLWINDOW_TOKEN_KEY"
        var environment = ProcessInfo.processInfo.environment
        if (environment[keyVariable] ?? "").isEmpty {
            environment[keyVariable] = TokenCipher.generateKeyBase64()
        }
        let store = TokenStore(pool: db, cipher: try TokenCipher.fromEnvironment(variable: keyVariable, environment: environment))

        let report: BenchReport
        if let apiURL {
            let account = BenchAccount.fromEnvironment()
            report = try await measure(baseURL: apiURL, account: account, store: store, transport: transport)
        } else {
            let account = BenchAccount.random()
            let sandbox = try account.inProcessSandbox(enforceLimits: !noLimits)
            report = try await sandbox.withRunning { port in
                try await measure(baseURL: "http://127.0.0.1:\(port)", account: account, store: store, transport: transport)
            }
        }
        await db.close()
        return report
    }


    /// Warms the pool up to `tokens`, then pushes for `seconds` and measures.
    private func measure(baseURL: String, account: BenchAccount, store: TokenStore, transport: Transport) async throws -> BenchReport {
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
