public import Foundation
import Planning

/// The figures of `callwindow bench accounts`: how each account's window finished, how evenly
/// the daemon shared itself between them, and what the whole push cost.
public struct AccountsReport: Encodable, Sendable {
    /// One account's window.
    public struct Account: Encodable, Sendable {
        public var clientAccountID: UUID
        public var accepted: Int
        public var rateLimited: Int
        /// First attempt after the INSERT committed (ms); nil without any.
        public var firstPushMs: Int64?
        /// Last answer after the INSERT committed (ms), once every record was accepted; nil before.
        public var completionMs: Int64?
        /// Finished (every record accepted) with its last answer by the deadline.
        public var onTime: Bool

        enum CodingKeys: String, CodingKey {
            case clientAccountID = "client_account_id", accepted, rateLimited = "rate_limited"
            case firstPushMs = "first_push_ms", completionMs = "completion_ms", onTime = "on_time"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(clientAccountID.uuidString.lowercased(), forKey: .clientAccountID)
            try c.encode(accepted, forKey: .accepted)
            try c.encode(rateLimited, forKey: .rateLimited)
            try c.encode(firstPushMs, forKey: .firstPushMs)
            try c.encode(completionMs, forKey: .completionMs)
            try c.encode(onTime, forKey: .onTime)
        }
    }

    /// Minimum, median, 90th percentile and maximum (nearest rank) of some milliseconds.
    public struct Distribution: Encodable, Sendable, Equatable {
        public var min: Int64
        public var median: Int64
        public var p90: Int64
        public var max: Int64

        /// The distribution of `values`, nil when there are none.
        public init?(_ values: [Int64]) {
            let sorted = values.sorted()
            guard let first = sorted.first, let last = sorted.last else { return nil }
            func rank(_ p: Double) -> Int64 { sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))] }
            self.min = first
            self.median = rank(0.5)
            self.p90 = rank(0.9)
            self.max = last
        }
    }

    public var plan: AccountsPlan
    public var noLimits: Bool
    public var durable: Bool
    public var poolSize: Int
    /// `tokens.max_in_flight`: requests in flight per token pool (one pool per account).
    public var maxInFlight: Int
    /// `api.max_connections`: HTTP connections to the API, shared by every pool.
    public var apiConnections: Int
    /// `scheduler.claim_batch` and `scheduler.concurrent_batches`.
    public var claimBatch: Int
    public var concurrentBatches: Int
    public var accounts: [Account]
    /// The windows' deadline after the INSERT committed (ms; the same for every account).
    public var deadlineMs: Int64
    /// Records/s the whole daemon had to push, from the first push to the deadline, for every window to be on time.
    public var neededRPS: Double
    /// Records/s accepted while every account was pushing (from the last account's first push to
    /// the first account's last answer; the whole push when that is under a second).
    public var busyRPS: Double
    /// Records/s accepted from the first push to the last answer.
    public var achievedRPS: Double
    public var seconds: Double
    public var rateLimited: Int
    public var errors: Int
    public var lateRecords: Int
    /// Database transactions from the services' start to their stop, the bench's own left out.
    public var transactions: Int64
    public var cpuSeconds: Double
    public var postgresCPUSeconds: Double?
    public var peakRSSMB: Double

    public var accepted: Int { accounts.reduce(0) { $0 + $1.accepted } }
    public var finishedAccounts: Int { accounts.filter { $0.completionMs != nil }.count }
    public var onTimeAccounts: Int { accounts.filter(\.onTime).count }
    public var completion: Distribution? { Distribution(accounts.compactMap(\.completionMs)) }
    public var firstPush: Distribution? { Distribution(accounts.compactMap(\.firstPushMs)) }
    /// From the first account to finish to the last (ms).
    public var spreadMs: Int64? { completion.map { $0.max - $0.min } }
    /// The sum of the work fits before the deadlines: the daemon, with every account pushing, went
    /// at least as fast as the deadlines needed.
    public var fits: Bool { busyRPS >= neededRPS }
    public var transactionsPerRecord: Double { Double(transactions) / Double(max(1, accepted)) }
    public var cpuMicrosPerRecord: Double { cpuSeconds * 1e6 / Double(max(1, accepted)) }
    public var postgresMicrosPerRecord: Double? { postgresCPUSeconds.map { $0 * 1e6 / Double(max(1, accepted)) } }

    enum CodingKeys: String, CodingKey {
        case accounts, recordsPerAccount = "records_per_account", tokensPerAccount = "tokens_per_account", transport
        case noLimits = "no_limits", engineRate = "engine_rate", utilisation, durable, poolSize = "pool_size"
        case maxInFlight = "max_in_flight", apiConnections = "api_connections"
        case claimBatch = "claim_batch", concurrentBatches = "concurrent_batches"
        case deadlineMs = "deadline_ms", neededRPS = "needed_rps", busyRPS = "busy_rps", achievedRPS = "achieved_rps", fits
        case completionMs = "completion_ms", firstPushMs = "first_push_ms", spreadMs = "spread_ms"
        case finishedAccounts = "finished_accounts", onTimeAccounts = "on_time_accounts"
        case accepted, rateLimited = "rate_limited", errors, lateRecords = "late_records", seconds
        case transactions, transactionsPerRecord = "transactions_per_record"
        case cpuSeconds = "cpu_seconds", cpuMicrosPerRecord = "cpu_us_per_record"
        case postgresCPUSeconds = "postgres_cpu_seconds", postgresMicrosPerRecord = "postgres_us_per_record"
        case peakRSSMB = "peak_rss_mb", perAccount = "per_account"
    }

    public func encode(to encoder: any Encoder) throws {
        func round(_ value: Double, _ digits: Double = 100) -> Double { (value * digits).rounded() / digits }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(accounts.count, forKey: .accounts)
        try c.encode(plan.recordsPerAccount, forKey: .recordsPerAccount)
        try c.encode(plan.tokensPerAccount, forKey: .tokensPerAccount)
        try c.encode(plan.transport.rawValue, forKey: .transport)
        try c.encode(noLimits, forKey: .noLimits)
        try c.encode(round(plan.engineRate), forKey: .engineRate)
        try c.encode(round(plan.utilisation, 10_000), forKey: .utilisation)
        try c.encode(durable, forKey: .durable)
        try c.encode(poolSize, forKey: .poolSize)
        try c.encode(maxInFlight, forKey: .maxInFlight)
        try c.encode(apiConnections, forKey: .apiConnections)
        try c.encode(claimBatch, forKey: .claimBatch)
        try c.encode(concurrentBatches, forKey: .concurrentBatches)
        try c.encode(deadlineMs, forKey: .deadlineMs)
        try c.encode(round(neededRPS), forKey: .neededRPS)
        try c.encode(round(busyRPS), forKey: .busyRPS)
        try c.encode(round(achievedRPS), forKey: .achievedRPS)
        try c.encode(fits, forKey: .fits)
        try c.encode(completion, forKey: .completionMs)
        try c.encode(firstPush, forKey: .firstPushMs)
        try c.encode(spreadMs, forKey: .spreadMs)
        try c.encode(finishedAccounts, forKey: .finishedAccounts)
        try c.encode(onTimeAccounts, forKey: .onTimeAccounts)
        try c.encode(accepted, forKey: .accepted)
        try c.encode(rateLimited, forKey: .rateLimited)
        try c.encode(errors, forKey: .errors)
        try c.encode(lateRecords, forKey: .lateRecords)
        try c.encode(round(seconds), forKey: .seconds)
        try c.encode(transactions, forKey: .transactions)
        try c.encode(round(transactionsPerRecord, 1_000), forKey: .transactionsPerRecord)
        try c.encode(round(cpuSeconds), forKey: .cpuSeconds)
        try c.encode(round(cpuMicrosPerRecord, 10), forKey: .cpuMicrosPerRecord)
        try c.encode(postgresCPUSeconds.map { round($0) }, forKey: .postgresCPUSeconds)
        try c.encode(postgresMicrosPerRecord.map { round($0, 10) }, forKey: .postgresMicrosPerRecord)
        try c.encode(round(peakRSSMB), forKey: .peakRSSMB)
        try c.encode(accounts, forKey: .perAccount)
    }

    /// The report as aligned lines.
    public var text: String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        func seconds(_ ms: Int64) -> String { fixed(Double(ms) / 1_000, 2) + " s" }
        func distribution(_ d: Distribution?) -> String {
            d.map { "min \(seconds($0.min)), median \(seconds($0.median)), p90 \(seconds($0.p90)), max \(seconds($0.max))" } ?? "none"
        }
        let verdict = fits
            ? "fits: the deadlines needed \(fixed(neededRPS)) records/s, the daemon did \(fixed(busyRPS)) with every account pushing"
            : "does NOT fit: the deadlines needed \(fixed(neededRPS)) records/s, the daemon did only \(fixed(busyRPS)) with every account pushing"
        let late = accounts.filter { !$0.onTime }
        let slowest = accounts.filter { $0.completionMs != nil }.sorted { ($0.completionMs ?? 0) > ($1.completionMs ?? 0) }.prefix(3)
        return """
            accounts      \(accounts.count) × \(plan.recordsPerAccount) records, \(plan.tokensPerAccount) token(s) each, \(plan.transport.rawValue)\(noLimits ? ", no limits" : "")
            plan          \(fixed(plan.engineRate, 0)) records/s for the whole daemon: each account planned at \(fixed(plan.utilisation * 100, 2)) % of its \(fixed(plan.accountCeiling, 0)) records/s
            deadline      \(seconds(deadlineMs)) after the INSERT committed (every account)
            sum of work   \(verdict)
            completion    \(distribution(completion)) after the INSERT
            first push    \(distribution(firstPush))
            spread        \(spreadMs.map(seconds) ?? "n/a") from the first account to finish to the last
            on time       \(onTimeAccounts) of \(accounts.count) accounts finished by their deadline (\(finishedAccounts) finished)\(late.isEmpty ? "" : "; \(lateRecords) records accepted after it")
            slowest       \(slowest.map { "\($0.clientAccountID.uuidString.prefix(8).lowercased()) \(seconds($0.completionMs ?? 0))" }.joined(separator: ", "))
            accepted      \(accepted) in \(fixed(self.seconds, 2)) s from the first push to the last answer (\(fixed(achievedRPS)) records/s)
            rate limited  \(rateLimited) (429s seen)
            other errors  \(errors)
            transactions  \(transactions) (\(fixed(transactionsPerRecord, 3)) per record; pg_stat_database, the bench's own left out)
            cpu           \(fixed(cpuSeconds, 2)) s, \(fixed(cpuMicrosPerRecord, 0)) µs/record (this process: the daemon's services and the in-process sandbox)
            postgres cpu  \(postgresCPUSeconds.map { fixed($0, 2) + " s, " + fixed(postgresMicrosPerRecord ?? 0, 0) + " µs/record (server processes)" } ?? "n/a (not a private cluster)")
            peak rss      \(fixed(peakRSSMB)) MB
            http          \(apiConnections) connections to the API shared by every account; up to \(maxInFlight) requests in flight in all, shared by the accounts sending
            claims        \(claimBatch) records per claim, \(concurrentBatches) batches out at once per account
            database      pool of \(poolSize) connections; \(durable ? "durable (fsync and synchronous_commit on)" : "not durable")
            """
    }

    /// The report as one JSON object with snake_case names.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}
