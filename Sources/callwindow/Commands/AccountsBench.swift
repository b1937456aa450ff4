import ArgumentParser
import Benchmarks
import Daemon
import Logging
import Planning

/// `callwindow bench accounts`: N client accounts on one daemon, each with one window due now;
/// per-account completion against the deadlines, the spread between them, 429s, transactions
/// per record and CPU.
struct AccountsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts",
        abstract: "Push one window due now for each of N client accounts through one daemon and report how evenly and how cheaply they finish.",
        discussion: """
            Starts a private PostgreSQL cluster (durable: fsync and synchronous_commit on) unless \
            --database-url is given, and an in-process sandbox that knows every account. It migrates \
            the database, wires the daemon's services for N accounts as `callwindow run` does (one \
            leader, one dispatcher and token pool per account, --tokens each), inserts one campaign of \
            1 caller × --records-per-account receivers per account in one transaction, and reads the \
            figures from the audit trail. Each window's deadline: every account is planned at its \
            even share of --engine-rate (records/s for the whole daemon) when that is below the \
            daemon's own 80 % of the account's API rate, plus the 10 s push margin, so the sum of \
            the work fits exactly when the daemon sustains --engine-rate; the report says whether it \
            did. Lateness is reported, not an error; the exit status is 1 only when records were \
            left unaccepted. CPU and peak RSS are this process's (the services and the in-process \
            sandbox); PostgreSQL's CPU is reported separately for a private cluster.
            """
    )

    @Option(help: "Client accounts on the daemon.")
    var accounts: Int = 100

    @Option(name: .customLong("records-per-account"), help: "Records in each account's window (1 caller × N receivers).")
    var recordsPerAccount: Int = 2_000

    @Option(help: "Tokens per account (tokens.max).")
    var tokens: Int = 1

    @Option(help: "v1, v2 or batch.")
    var transport: Transport = .v1

    @Flag(name: .customLong("no-limits"), help: "Sandbox enforces no limit and the pools pace nothing: measures the engine.")
    var noLimits = false

    @Option(name: .customLong("engine-rate"), help: "Records/s the whole daemon is planned to sustain; sets the windows' deadlines.")
    var engineRate: Double = 1_000

    @Option(name: .customLong("database-url"), help: "Use this database (campaigns are inserted into it) instead of a private cluster.")
    var databaseURL: String?

    @Option(name: .customLong("pool-size"), help: "Database connections of the daemon (database.pool_size; default 8).")
    var poolSize: Int?

    @Option(name: .customLong("max-in-flight"), help: "Requests in flight for the whole daemon, shared by its accounts (tokens.max_in_flight; default 256).")
    var maxInFlight: Int?

    @Option(name: .customLong("api-connections"), help: "HTTP connections to the API, shared by every account (api.max_connections; default 64).")
    var apiConnections: Int?

    @Option(name: .customLong("claim-batch"), help: "Deliveries claimed at once (scheduler.claim_batch; default 500).")
    var claimBatch: Int?

    @Option(name: .customLong("concurrent-batches"), help: "Claimed batches out at once per account (scheduler.concurrent_batches; default 2).")
    var concurrentBatches: Int?

    @Option(help: "Give up after this many seconds (default: five times the windows' push time, at least 120).")
    var timeout: Int?

    @Flag(name: .long, help: "Print the report as one JSON object on the last line as well.")
    var json = false

    func validate() throws {
        guard accounts >= 1 && accounts <= 2_000 else { throw ValidationError("--accounts must be between 1 and 2000") }
        guard recordsPerAccount >= 1 && recordsPerAccount <= 1_000_000 else {
            throw ValidationError("--records-per-account must be between 1 and 1000000")
        }
        guard tokens >= 1 && tokens <= 18 else {
            throw ValidationError("--tokens must be between 1 and 18 (10 mints per 30 min keep at most 18 tokens of 60 min alive)")
        }
        guard engineRate > 0 && engineRate.isFinite else { throw ValidationError("--engine-rate must be a positive number of records/s") }
        if let poolSize, poolSize < 1 || poolSize > 500 { throw ValidationError("--pool-size must be between 1 and 500") }
        if let maxInFlight, maxInFlight < 1 { throw ValidationError("--max-in-flight must be at least 1") }
        if let apiConnections, apiConnections < 1 || apiConnections > 4_096 { throw ValidationError("--api-connections must be between 1 and 4096") }
        if let claimBatch, claimBatch < 1 || claimBatch > 10_000 { throw ValidationError("--claim-batch must be between 1 and 10000") }
        if let concurrentBatches, concurrentBatches < 1 || concurrentBatches > 8 {
            throw ValidationError("--concurrent-batches must be between 1 and 8")
        }
        if let timeout, timeout < 1 { throw ValidationError("--timeout must be at least 1 second") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: false)
            handler.logLevel = .warning
            return handler
        }
        var bench = AccountsBenchmark()
        (bench.accounts, bench.recordsPerAccount, bench.tokensPerAccount, bench.transport, bench.noLimits) =
            (accounts, recordsPerAccount, tokens, transport, noLimits)
        (bench.engineRate, bench.databaseURL, bench.poolSize, bench.timeout) = (engineRate, databaseURL, poolSize, timeout)
        (bench.maxInFlight, bench.apiConnections, bench.claimBatch, bench.concurrentBatches) =
            (maxInFlight, apiConnections, claimBatch, concurrentBatches)
        let report: AccountsReport
        do {
            report = try await bench.run()
        } catch {
            throw fail(error)
        }
        print(report.text)
        if json { print(report.json) }
        guard report.accepted == accounts * recordsPerAccount else { throw ExitCode(1) }
    }
}
