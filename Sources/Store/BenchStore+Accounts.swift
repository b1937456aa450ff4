public import Foundation
public import Postgres

/// The statements of `callwindow bench accounts`: one synthetic campaign per account, inserted
/// together, their progress, their per-account figures from the audit trail, and the database's
/// transaction counter. Only benchmarks call these.
extension BenchStore {
    /// Makes sure every account of `accounts` has its dynamic label (named `Bench`), in one statement.
    public static func ensureLabels(_ accounts: [(clientAccountID: UUID, labelID: UUID)], on pool: PostgresPool) async throws {
        guard !accounts.isEmpty else { return }
        try await pool.execute(
            """
            INSERT INTO callwindow.labels (client_account_id, id, name, label_type)
            SELECT a, l, 'Bench', 'dynamic' FROM unnest($1::uuid[], $2::uuid[]) AS t(a, l)
            ON CONFLICT DO NOTHING
            """, accounts.map(\.clientAccountID), accounts.map(\.labelID))
    }

    /// Inserts, in one transaction, one campaign per account of `accounts` — one caller ×
    /// `receivers` synthetic receivers, a 30 s lead, starting at `startsAt` (epoch ms) for two
    /// hours — so every account's change notification arrives at once. Returns each account's
    /// campaign id.
    public static func insertAccountCampaigns(_ accounts: [(clientAccountID: UUID, labelID: UUID)], startsAt: Int64, receivers: Int,
                                              on pool: PostgresPool) async throws -> [UUID: Int64] {
        guard !accounts.isEmpty else { return [:] }
        return try await pool.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead, call_reason)
                SELECT a, 'bench accounts', l, callwindow.at_ms($3), callwindow.at_ms($3) + interval '2 hours',
                       interval '30 seconds', 'Your parcel arrives today'
                FROM unnest($1::uuid[], $2::uuid[]) AS t(a, l)
                RETURNING id, client_account_id
                """, accounts.map(\.clientAccountID), accounts.map(\.labelID), startsAt)
            var ids: [UUID: Int64] = [:]
            for row in rows { ids[try row.decode("client_account_id", as: UUID.self)] = try row.decode("id", as: Int64.self) }
            let campaigns = Array(ids.values)
            try await connection.execute(
                "INSERT INTO callwindow.campaign_callers (campaign_id, phone) SELECT c, '4930901820' FROM unnest($1::int8[]) AS c",
                campaigns)
            try await connection.execute(
                """
                INSERT INTO callwindow.campaign_receivers (campaign_id, phone)
                SELECT c, (4915100000000 + g)::text FROM unnest($1::int8[]) AS c, generate_series(1, $2::int8) g
                """, campaigns, Int64(receivers))
            return ids
        }
    }

    /// The progress of `campaignIDs` together, from their windows' own counters.
    public static func progress(campaignIDs: [Int64], on pool: PostgresPool) async throws -> Progress {
        let row = try await pool.query(
            """
            SELECT coalesce(sum(records) FILTER (WHERE state = 'materialized'), 0)::int8 AS total,
                   coalesce(sum(accepted), 0)::int8 AS accepted,
                   coalesce(sum(rejected + expired), 0)::int8 AS failed
              FROM callwindow.windows WHERE campaign_id = ANY($1::int8[])
            """, campaignIDs)[0]
        return Progress(materialised: try row.decode("total"), accepted: try row.decode("accepted"), failed: try row.decode("failed"))
    }

    /// What the audit trail says about one account's campaign.
    public struct AccountFigures: Sendable {
        /// The campaign.
        public var campaignID: Int64
        /// Its client account.
        public var clientAccountID: UUID
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
        /// The window's deadline, `starts_at − lead` (epoch ms).
        public var deadline: Int64
        /// Accepted records attempted after the deadline.
        public var late: Int64
    }

    /// The figures of each campaign of `campaignIDs` from `callwindow.push_attempts`, in campaign order.
    public static func accountFigures(campaignIDs: [Int64], on pool: PostgresPool) async throws -> [AccountFigures] {
        try await pool.query(
            """
            SELECT c.id, c.client_account_id, callwindow.ms_of(c.starts_at - c.lead) AS deadline,
                   count(a.*) FILTER (WHERE a.outcome = 'accepted')::int8 AS accepted,
                   count(a.*) FILTER (WHERE a.http_status = 429)::int8 AS rate_limited,
                   count(a.*) FILTER (WHERE a.outcome <> 'accepted')::int8 AS errors,
                   coalesce(callwindow.ms_of(min(a.attempted_at)), 0) AS first_at,
                   coalesce(max(callwindow.ms_of(a.attempted_at) + coalesce(a.latency_ms, 0)), 0)::int8 AS last_at,
                   count(a.*) FILTER (WHERE a.outcome = 'accepted' AND a.attempted_at > c.starts_at - c.lead)::int8 AS late
              FROM callwindow.campaigns c LEFT JOIN callwindow.push_attempts a ON a.campaign_id = c.id
             WHERE c.id = ANY($1::int8[])
             GROUP BY c.id
             ORDER BY c.id
            """, campaignIDs
        ).map { row in
            AccountFigures(
                campaignID: try row.decode("id"), clientAccountID: try row.decode("client_account_id"),
                accepted: try row.decode("accepted"), rateLimited: try row.decode("rate_limited"), errors: try row.decode("errors"),
                firstAt: try row.decode("first_at"), lastAt: try row.decode("last_at"), deadline: try row.decode("deadline"),
                late: try row.decode("late"))
        }
    }

    /// Records of `campaignIDs` accepted by attempts started in `from ..< until` (epoch ms).
    public static func accepted(campaignIDs: [Int64], from: Int64, until: Int64, on pool: PostgresPool) async throws -> Int64 {
        try await pool.query(
            """
            SELECT count(*)::int8 AS n FROM callwindow.push_attempts
             WHERE campaign_id = ANY($1::int8[]) AND outcome = 'accepted'
               AND attempted_at >= callwindow.at_ms($2) AND attempted_at < callwindow.at_ms($3)
            """, campaignIDs, from, until)[0].decode("n")
    }

    /// Transactions this database has committed or rolled back so far (`pg_stat_database`
    /// `xact_commit + xact_rollback`). The server publishes a backend's counts at most about once
    /// a second and when the backend exits, so read it after the connections measured have closed.
    public static func transactions(on connection: PostgresConnection) async throws -> Int64 {
        try await connection.query(
            """
            SELECT (xact_commit + xact_rollback)::int8 AS n FROM pg_stat_database WHERE datname = current_database()
            """)[0].decode("n")
    }
}
