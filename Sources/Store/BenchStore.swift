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

    /// Unexpired, unrevoked tokens stored for the account: a bench that generated its own token
    /// key cannot read any of them.
    public static func storedTokens(clientAccountID: UUID, on pool: PostgresPool) async throws -> Int {
        try await pool.query(
            "SELECT count(*)::int8 AS n FROM callwindow.tokens WHERE client_account_id = $1::uuid AND expires_at > now() AND revoked_at IS NULL",
            clientAccountID.uuidString)[0].decode("n", as: Int.self)
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

/// The dataset of `callwindow bench dashboard`, generated with set-based statements.
extension BenchStore {
    /// What the dashboard bench reads back to choose its pages.
    public struct DashboardSample: Sendable {
        /// A campaign in the middle of the generated ones.
        public var campaignID: Int64
        /// One of its windows that has audit rows.
        public var windowID: Int64
        /// A receiver that has audit rows.
        public var receiver: String
        /// Rows in `callwindow.push_attempts`.
        public var auditRows: Int64
        /// Its partitions that hold rows.
        public var partitions: Int
    }

    /// Inserts `campaigns` campaigns of `clientAccountID` (label `labelID`), each with one caller and
    /// `windowsPerCampaign` stored one-hour windows a day apart, the first half of them in the
    /// past and materialised with counters, the rest planned; creates the audit partitions from
    /// two months before `now`'s month to the next month. Returns the windows inserted.
    public static func insertDashboardCampaigns(clientAccountID: UUID, labelID: UUID, campaigns: Int, windowsPerCampaign: Int,
                                                now: Int64, on pool: PostgresPool) async throws -> Int {
        try await pool.transaction { connection in
            // The audit partitions of the two months before `now`'s, `now`'s and the next.
            _ = try await connection.query(
                "SELECT callwindow.ensure_push_attempt_partitions(date_trunc('month', callwindow.at_ms($1)) - interval '2 months', 3)", now)
            try await connection.execute(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead, call_reason)
                SELECT $1::uuid, 'bench campaign ' || g, $2::uuid,
                       date_trunc('hour', callwindow.at_ms($3)) - ($4::int4 / 2) * interval '1 day',
                       date_trunc('hour', callwindow.at_ms($3)) + ($4::int4 - $4::int4 / 2) * interval '1 day',
                       interval '10 minutes', 'Your parcel arrives today'
                FROM generate_series(1, $5::int4) g
                """, clientAccountID.uuidString, labelID.uuidString, now, Int32(windowsPerCampaign), Int32(campaigns))
            try await connection.execute(
                """
                INSERT INTO callwindow.campaign_callers (campaign_id, phone)
                SELECT id, '4930901820' FROM callwindow.campaigns WHERE client_account_id = $1::uuid
                """, clientAccountID.uuidString)
            return try await connection.execute(
                """
                INSERT INTO callwindow.windows (client_account_id, campaign_id, starts_at, ends_at, deadline, push_at, state,
                                                records, accepted, rejected, expired, planned_at, materialized_at)
                SELECT c.client_account_id, c.id, s, s + interval '1 hour', s - interval '10 minutes', s - interval '20 minutes',
                       CASE WHEN s < callwindow.at_ms($2) THEN 'materialized' ELSE 'planned' END,
                       CASE WHEN s < callwindow.at_ms($2) THEN 300 ELSE 0 END,
                       CASE WHEN s < callwindow.at_ms($2) THEN 290 ELSE 0 END,
                       CASE WHEN s < callwindow.at_ms($2) THEN 7 ELSE 0 END,
                       CASE WHEN s < callwindow.at_ms($2) THEN 3 ELSE 0 END,
                       c.starts_at - interval '1 day', CASE WHEN s < callwindow.at_ms($2) THEN s - interval '30 minutes' END
                FROM callwindow.campaigns c, generate_series(0, $3::int4 - 1) d,
                     LATERAL (SELECT c.starts_at + d * interval '1 day' AS s) w
                WHERE c.client_account_id = $1::uuid
                """, clientAccountID.uuidString, now, Int32(windowsPerCampaign))
        }
    }

    /// Appends audit rows `first ..< first + count` of `total`, spread evenly over `from ..< until`
    /// (epoch ms) and over the account's windows: 97 % accepted, 2 % answered 429, 1 % rejected.
    public static func insertDashboardAudit(clientAccountID: UUID, labelID: UUID, first: Int64, count: Int64, total: Int64,
                                            from: Int64, until: Int64, on pool: PostgresPool) async throws {
        try await pool.execute(
            """
            WITH ids AS (
              SELECT array_agg(id ORDER BY id) AS w FROM callwindow.windows WHERE client_account_id = $1::uuid
            )
            INSERT INTO callwindow.push_attempts (attempted_at, client_account_id, campaign_id, window_id, delivery_id, caller, receiver,
              starts_at, ends_at, label_id, label_name, call_reason, transport, token_fingerprint, http_status, outcome, reason,
              latency_ms, instance)
            SELECT callwindow.at_ms($5 + (($6 - $5) * g) / $4), w.client_account_id, w.campaign_id, w.id, g, '4930901820',
                   (4915100000000 + g % 1000003)::text, w.starts_at, w.ends_at, $7::uuid, 'Bench', 'Your parcel arrives today', 'v1',
                   'a1b2c3d4e5f6',
                   CASE WHEN g % 100 = 7 THEN 400 WHEN g % 50 = 3 THEN 429 ELSE 200 END,
                   CASE WHEN g % 100 = 7 THEN 'rejected' WHEN g % 50 = 3 THEN 'rate_limited' ELSE 'accepted' END,
                   CASE WHEN g % 100 = 7 THEN 'Not a Truecaller user' WHEN g % 50 = 3 THEN 'rate limited' END,
                   20 + (g % 40)::int4, 'bench'
            FROM ids CROSS JOIN generate_series($2::int8, $2::int8 + $3::int8 - 1) g
            JOIN callwindow.windows w ON w.id = ids.w[1 + (g % cardinality(ids.w))]
            """, clientAccountID.uuidString, first, count, total, from, until, labelID.uuidString)
    }

    /// The account of a dashboard dataset an earlier run generated into this database (the one
    /// with the most bench campaigns), its campaign and window counts, and the instant of its
    /// newest audit row (epoch ms) — the `now` it was generated at; nil when there is none.
    public static func existingDashboardDataset(on pool: PostgresPool) async throws -> (clientAccountID: UUID, campaigns: Int, windows: Int, generatedAt: Int64)? {
        let rows = try await pool.query(
            """
            WITH a AS (
              SELECT client_account_id, count(*) AS campaigns FROM callwindow.campaigns WHERE name LIKE 'bench campaign %'
              GROUP BY client_account_id ORDER BY count(*) DESC LIMIT 1
            )
            SELECT a.client_account_id, a.campaigns,
                   (SELECT count(*) FROM callwindow.windows w WHERE w.client_account_id = a.client_account_id) AS windows,
                   (SELECT callwindow.ms_of(max(attempted_at)) FROM callwindow.push_attempts p
                    WHERE p.client_account_id = a.client_account_id) AS generated_at
            FROM a
            """)
        guard let row = rows.first, let generatedAt = try row.decode("generated_at", as: Int64?.self) else { return nil }
        return (try row.decode("client_account_id"), try row.decode("campaigns"), try row.decode("windows"), generatedAt)
    }

    /// Refreshes the planner statistics and picks the pages the bench reads.
    public static func dashboardSample(clientAccountID: UUID, on pool: PostgresPool) async throws -> DashboardSample {
        try await pool.execute("ANALYZE callwindow.campaigns, callwindow.windows, callwindow.push_attempts")
        let row = try await pool.query(
            """
            WITH c AS (
              SELECT id FROM callwindow.campaigns WHERE client_account_id = $1::uuid ORDER BY id
              OFFSET (SELECT count(*) / 2 FROM callwindow.campaigns WHERE client_account_id = $1::uuid) LIMIT 1
            )
            SELECT c.id AS campaign, a.window_id, a.receiver,
                   (SELECT count(*) FROM callwindow.push_attempts) AS rows,
                   (SELECT count(DISTINCT tableoid) FROM callwindow.push_attempts) AS partitions
            FROM c, LATERAL (SELECT window_id, receiver FROM callwindow.push_attempts p WHERE p.campaign_id = c.id
                             ORDER BY attempted_at DESC LIMIT 1) a
            """, clientAccountID.uuidString)
        guard let first = row.first else { throw StoreError(.invalidData, "the dashboard dataset has no audit rows") }
        return DashboardSample(campaignID: try first.decode("campaign"), windowID: try first.decode("window_id"),
                               receiver: try first.decode("receiver"), auditRows: try first.decode("rows"),
                               partitions: try first.decode("partitions"))
    }
}
