import ArgumentParser
import Benchmarks
import Planning

/// `callwindow bench`: benchmarks that print a report (and JSON), not timed tests.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure parts of CallWindow and print a report.",
        subcommands: [SenderBench.self, PipelineBench.self, AccountsBench.self, PostgresBench.self, PlanningBench.self, DashboardBench.self]
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
    var transport: Transport = .v1

    @Flag(name: .customLong("no-limits"), help: "Sandbox enforces no limit and the pool paces nothing: measures the engine.")
    var noLimits = false

    @Option(name: .customLong("api-url"), help: "Use this API instead of an in-process sandbox.")
    var apiURL: String?

    @Option(name: .customLong("database-url"), help: "Use this database for the token ledger instead of a private cluster.")
    var databaseURL: String?

    @Flag(name: .long, help: "Print the report as one JSON object on the last line as well.")
    var json = false

    func validate() throws {
        guard tokens >= 1 else { throw ValidationError("--tokens must be at least 1") }
        guard seconds >= 1 else { throw ValidationError("--seconds must be at least 1") }
    }

    func run() async throws {
        var bench = SenderBenchmark()
        (bench.tokens, bench.seconds, bench.transport, bench.noLimits) = (tokens, seconds, transport, noLimits)
        (bench.apiURL, bench.databaseURL) = (apiURL, databaseURL)
        do {
            let report = try await bench.run()
            print(report.text)
            if json { print(report.json) }
        } catch {
            throw fail(error)
        }
    }
}

