public import Foundation
public import Postgres

/// The statements of `callwindow bench`: a synthetic campaign, its progress and its figures
/// from the audit trail, and the libpq layer's COPY table. Only benchmarks call these.
public enum BenchStore {
    /// Whether the server commits durably (fsync and synchronous_commit on).
    public static func isDurable(on connection: PostgresConnection) async throws -> Bool {
        try await connection.query(
            "SELECT current_setting('fsync') = 'on' AND current_setting('synchronous_commit') = 'on' AS durable")[0].decode("durable")
    }

    /// Makes sure the account has the dynamic label `labelID` (named `Bench`).
    public static func ensureLabel(clientAccountID: UUID, labelID: UUID, on pool: PostgresPool) async throws {
        try await pool.execute(
            """
            INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1::uuid, $2::uuid, 'Bench', 'dynamic')
            ON CONFLICT DO NOTHING
            """, clientAccountID.uuidString, labelID.uuidString)
    }

    /// Inserts, in one transaction, a campaign of one caller × `receivers` synthetic receivers
    /// with a 30 s lead, starting at `startsAt` (epoch ms) for two hours; returns its id.
    public static func insertCampaign(clientAccountID: UUID, labelID: UUID, startsAt: Int64, receivers: Int,
                                      on pool: PostgresPool) async throws -> Int64 {
        try await pool.transaction { connection in
            let id: Int64 = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead, call_reason)
                VALUES ($1::uuid, 'bench pipeline', $2::uuid, callwindow.at_ms($3), callwindow.at_ms($3) + interval '2 hours',
                        interval '30 seconds', 'Your parcel arrives today') RETURNING id
                """, clientAccountID.uuidString, labelID.uuidString, startsAt)[0].decode("id")
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930901820')", id)
            try await connection.execute(
                """
                INSERT INTO callwindow.campaign_receivers (campaign_id, phone)
                SELECT $1, (4915100000000 + g)::text FROM generate_series(1, $2::int8) g
                """, id, Int64(receivers))
            return id
        }
    }

    /// A campaign's progress from its windows' own counters (kept by the result writer, so the
    /// bench does not load the database it measures).
    public struct Progress: Sendable {
        /// Records of its materialised windows.
        public var materialised: Int64
        /// Records accepted so far.
        public var accepted: Int64
        /// Rejected or expired.
        public var failed: Int64
    }

    /// `campaignID`'s progress.
    public static func progress(campaignID: Int64, on pool: PostgresPool) async throws -> Progress {
        let row = try await pool.query(
            """
            SELECT coalesce(sum(records) FILTER (WHERE state = 'materialized'), 0)::int8 AS total,
                   coalesce(sum(accepted), 0)::int8 AS accepted,
                   coalesce(sum(rejected + expired), 0)::int8 AS failed
              FROM callwindow.windows WHERE campaign_id = $1
            """, campaignID)[0]
        return Progress(materialised: try row.decode("total"), accepted: try row.decode("accepted"), failed: try row.decode("failed"))
    }

    /// What the audit trail says about a campaign's push.
    public struct Figures: Sendable {
        /// Attempts the API accepted.
        public var accepted: Int64
        /// Attempts answered 429.
        public var rateLimited: Int64
        /// Attempts not accepted.
        public var errors: Int64
        /// First attempt (epoch ms), 0 without any.
        public var firstAt: Int64
        /// Last answer (attempt + latency, epoch ms), 0 without any.
        public var lastAt: Int64
        /// Median attempt latency (ms; 0 without any).
        public var p50Ms: Double
        /// 99th-percentile attempt latency (ms; 0 without any).
        public var p99Ms: Double
        /// Accepted after their deadline.
        public var late: Int64
        /// Worst lateness of an accepted record (ms; ≤ 0 when none was late).
        public var latenessMs: Int64
    }

    /// `campaignID`'s figures from `callwindow.push_attempts`.
    public static func figures(campaignID: Int64, on pool: PostgresPool) async throws -> Figures {
        let row = try await pool.query(
            """
            SELECT count(*) FILTER (WHERE outcome = 'accepted')::int8 AS accepted,
                   count(*) FILTER (WHERE http_status = 429)::int8 AS rate_limited,
                   count(*) FILTER (WHERE outcome <> 'accepted')::int8 AS errors,
                   coalesce(callwindow.ms_of(min(attempted_at)), 0) AS first_at,
                   coalesce(max(callwindow.ms_of(attempted_at) + coalesce(latency_ms, 0)), 0)::int8 AS last_at,
                   coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), 0)::float8 AS p50,
                   coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), 0)::float8 AS p99,
                   count(*) FILTER (WHERE a.outcome = 'accepted' AND a.attempted_at > a.starts_at - c.lead)::int8 AS late,
                   coalesce(max(callwindow.ms_of(a.attempted_at) - callwindow.ms_of(a.starts_at - c.lead))
                            FILTER (WHERE a.outcome = 'accepted'), 0)::int8 AS lateness
              FROM callwindow.push_attempts a JOIN callwindow.campaigns c ON c.id = a.campaign_id
             WHERE a.campaign_id = $1
            """, campaignID)[0]
        return Figures(
            accepted: try row.decode("accepted"), rateLimited: try row.decode("rate_limited"), errors: try row.decode("errors"),
            firstAt: try row.decode("first_at"), lastAt: try row.decode("last_at"), p50Ms: try row.decode("p50"), p99Ms: try row.decode("p99"),
            late: try row.decode("late"), latenessMs: try row.decode("lateness"))
    }

    /// Creates the session's temporary COPY table `bench_copy`.
    public static func createCopyTable(on connection: PostgresConnection) async throws {
        try await connection.execute("CREATE TEMPORARY TABLE bench_copy (id int8, caller text, receiver text, reason text)")
    }

    /// Empties `bench_copy` and loads `rows` (id, caller, receiver, reason) with COPY; returns the rows copied.
    public static func copy(_ rows: [[String?]], on connection: PostgresConnection) async throws -> Int {
        try await connection.execute("TRUNCATE bench_copy")
        return try await connection.copyFrom("COPY bench_copy (id, caller, receiver, reason) FROM STDIN", rows: rows)
    }
}
