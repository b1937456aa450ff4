import ArgumentParser
import Benchmarks
import Daemon
import Logging
import Planning

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
    var transport: Transport = .v1

    @Flag(name: .customLong("no-limits"), help: "Sandbox enforces no limit and the pool paces nothing: measures the engine.")
    var noLimits = false

    @Option(name: .customLong("api-url"), help: "Use this API instead of an in-process sandbox.")
    var apiURL: String?

    @Flag(name: .customLong("sandbox-process"), help: "Run the sandbox as a `callwindow sandbox` process of its own, so its CPU is measured apart.")
    var sandboxProcess = false

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
        guard records >= 1 && records <= 10_000_000 else { throw ValidationError("--records must be between 1 and 10000000") }
        guard tokens >= 1 && tokens <= 18 else {
            throw ValidationError("--tokens must be between 1 and 18 (10 mints per 30 min keep at most 18 tokens of 60 min alive)")
        }
        guard claimBatch >= 1 && claimBatch <= 10_000 else { throw ValidationError("--claim-batch must be between 1 and 10000") }
        if sandboxProcess && apiURL != nil { throw ValidationError("--sandbox-process and --api-url exclude each other") }
        guard concurrentBatches >= 1 && concurrentBatches <= 8 else { throw ValidationError("--concurrent-batches must be between 1 and 8") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: false)
            handler.logLevel = .warning
            return handler
        }
        var bench = PipelineBenchmark()
        (bench.records, bench.tokens, bench.transport, bench.noLimits) = (records, tokens, transport, noLimits)
        (bench.apiURL, bench.databaseURL, bench.claimBatch, bench.concurrentBatches, bench.timeout) =
            (apiURL, databaseURL, claimBatch, concurrentBatches, timeout)
        bench.sandboxProcess = sandboxProcess
        let report: PipelineReport
        do {
            report = try await bench.run()
        } catch {
            throw fail(error)
        }
        print(report.text)
        if json { print(report.json) }
        guard report.accepted == records else { throw ExitCode(1) }
    }
}

