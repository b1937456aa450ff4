import Foundation

/// The pipeline bench's figures: the sender bench's, plus the pipeline's own.
public struct PipelineReport: Encodable, Sendable {
    public var sender: BenchReport
    public var records: Int
    public var seconds: Double
    public var durable: Bool
    /// From the campaign's INSERT commit to the first push; `nil` when nothing was pushed.
    public var firstPushMs: Int64?
    public var materialisedMs: Int64?
    public var lateRecords: Int
    public var maxLatenessMs: Int64
    public var databaseShare: Double
    public var postgresCPUSeconds: Double?
    /// Of `postgresCPUSeconds`, what the bench's own campaign INSERT cost (the user's SQL, not
    /// the engine's work); `nil` when PostgreSQL's CPU is not measured.
    public var postgresInsertCPUSeconds: Double? = nil
    /// CPU of a sandbox run as a process of its own (`--sandbox-process`); `nil` otherwise.
    public var sandboxCPUSeconds: Double? = nil
    public var claimBatch: Int
    public var concurrentBatches: Int

    /// Records the API accepted.
    public var accepted: Int { sender.accepted }

    enum CodingKeys: String, CodingKey {
        case records, seconds, durable
        case firstPushMs = "first_push_ms", materialisedMs = "materialised_ms", lateRecords = "late_records"
        case maxLatenessMs = "max_lateness_ms", databaseShare = "database_share", postgresCPUSeconds = "postgres_cpu_seconds"
        case claimBatch = "claim_batch", concurrentBatches = "concurrent_batches"
        case sandboxCPUSeconds = "sandbox_cpu_seconds", daemonMicros = "daemon_us_per_record"
        case postgresMicros = "postgres_us_per_record", sandboxMicros = "sandbox_us_per_record"
        case postgresInsertCPUSeconds = "postgres_insert_cpu_seconds", postgresEngineMicros = "postgres_engine_us_per_record"
    }

    /// PostgreSQL's CPU without the bench's campaign INSERT: the engine's materialisation, claims,
    /// admission checks, result writes and audit rows.
    public var postgresEngineCPUSeconds: Double? {
        guard let total = postgresCPUSeconds, let insert = postgresInsertCPUSeconds else { return nil }
        return max(0, total - insert)
    }

    /// CPU per accepted record, in µs, of `seconds` of CPU.
    func perRecord(_ seconds: Double?) -> Double? {
        guard let seconds, accepted > 0 else { return nil }
        return (seconds * 1_000_000 / Double(accepted)).rounded()
    }

    public func encode(to encoder: any Encoder) throws {
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
        try c.encode(sandboxCPUSeconds.map(BenchReport.round), forKey: .sandboxCPUSeconds)
        try c.encode(perRecord(sender.cpuSeconds), forKey: .daemonMicros)
        try c.encode(perRecord(postgresCPUSeconds), forKey: .postgresMicros)
        try c.encode(perRecord(sandboxCPUSeconds), forKey: .sandboxMicros)
        try c.encode(postgresInsertCPUSeconds.map(BenchReport.round), forKey: .postgresInsertCPUSeconds)
        try c.encode(perRecord(postgresEngineCPUSeconds), forKey: .postgresEngineMicros)
    }

    /// The report as aligned lines.
    public var text: String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        return sender.text + "\n" + """
            records       \(records) in one window (\(claimBatch) per claim, \(concurrentBatches) batches out at once)
            seconds       \(fixed(seconds, 2)) from the first push to the last answer
            first push    \(firstPushMs.map { "\($0) ms after the campaign's INSERT committed" } ?? "none")\(materialisedMs.map { " (all deliveries created after \($0) ms)" } ?? "")
            late          \(lateRecords) records accepted after starts_at − lead (worst by \(maxLatenessMs) ms)
            database      \(fixed(databaseShare * 100)) % of the push time in claims and result writes (summed over batches)
            postgres cpu  \(postgresCPUSeconds.map { fixed($0, 2) + " s (server processes\(postgresInsertCPUSeconds.map { "; the bench's campaign INSERT " + fixed($0, 2) + " s of it" } ?? ""))" } ?? "n/a (not a private cluster)")
            sandbox cpu   \(sandboxCPUSeconds.map { fixed($0, 2) + " s (its own process)" } ?? "in this process, or not measured (see --sandbox-process)")
            cpu/record    daemon \(perRecord(sender.cpuSeconds).map { "\(Int($0)) µs" } ?? "n/a")\(sandboxCPUSeconds == nil ? " (with the sandbox when in process)" : ""), PostgreSQL \(perRecord(postgresCPUSeconds).map { "\(Int($0)) µs" } ?? "n/a")\(perRecord(postgresEngineCPUSeconds).map { " (\(Int($0)) µs without the bench's INSERT)" } ?? ""), sandbox \(perRecord(sandboxCPUSeconds).map { "\(Int($0)) µs" } ?? "n/a")
            durable       \(durable ? "yes (fsync and synchronous_commit on)" : "no")
            """
    }

    /// The report as one JSON object with snake_case names.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}

