public import Foundation
public import Postgres

/// One row of `callwindow.campaign_progress`.
public struct CampaignProgress: Sendable, Codable, Equatable {
    /// The campaign's id.
    public var campaignID: Int64
    /// The client account the campaign belongs to.
    public var clientAccountID: UUID
    /// The campaign's name.
    public var name: String
    /// The campaign's status word as stored (`active`, `paused` or `cancelled`).
    public var status: String
    /// Windows stored for the campaign, in any state.
    public var windows: Int
    /// Deliveries created for its materialised windows.
    public var records: Int
    /// Deliveries waiting in the queue.
    public var pending: Int
    /// Deliveries claimed and being sent.
    public var inFlight: Int
    /// Deliveries the API accepted.
    public var accepted: Int
    /// Deliveries refused for good (by validation or the API).
    public var rejected: Int
    /// Deliveries whose `ends_at` passed before they were accepted.
    public var expired: Int
    /// Deliveries cancelled with their campaign, window or record.
    public var cancelled: Int
    /// Epoch ms of the next planned push, if any.
    public var nextPushAt: Int64?
    /// The worst planned lateness of any of its windows (ms; 0 when all are on time).
    public var maxLateByMs: Int64
    /// What the planner last found wrong with the campaign; empty when nothing.
    public var problems: [String]

    enum CodingKeys: String, CodingKey {
        case campaignID = "campaign_id", clientAccountID = "client_account_id", name, status, windows, records, pending
        case inFlight = "in_flight", accepted, rejected, expired, cancelled, nextPushAt = "next_push_at"
        case maxLateByMs = "max_late_by_ms", problems
    }
}

/// Reads progress and the audit trail for people (`callwindow status`, `callwindow audit`).
public struct ProgressStore: Sendable {
    /// A stateless store; every call takes the connection it runs on.
    public init() {}

    /// Progress of the given campaigns (all when empty), by id.
    public func campaigns(_ ids: [Int64], on connection: PostgresConnection) async throws -> [CampaignProgress] {
        let rows = try await connection.query(
            """
            SELECT \(Self.progressColumns)
            FROM callwindow.campaign_progress
            WHERE cardinality($1::int8[]) = 0 OR campaign_id = ANY($1)
            ORDER BY campaign_id
            """, ids)
        let progress = try rows.map(Self.progress)
        let missing = Set(ids).subtracting(progress.map(\.campaignID))
        if !missing.isEmpty {
            throw StoreError(.notFound, "campaign \(missing.sorted().map(String.init).joined(separator: ", ")) does not exist")
        }
        return progress
    }

    /// The `campaign_progress` columns `progress(_:)` decodes.
    static let progressColumns = """
        campaign_id, client_account_id, name, status, windows, records, pending, in_flight, accepted, rejected, expired,
        cancelled, callwindow.ms_of(next_push_at) AS next_push_ms, max_late_by_ms, problems
        """

    /// A `campaign_progress` row selected with `progressColumns`.
    static func progress(_ row: PostgresRow) throws -> CampaignProgress {
        CampaignProgress(
            campaignID: try row.decode("campaign_id"), clientAccountID: try row.decode("client_account_id"),
            name: try row.decode("name"), status: try row.decode("status"), windows: try row.decode("windows"),
            records: try row.decode("records"), pending: try row.decode("pending"), inFlight: try row.decode("in_flight"),
            accepted: try row.decode("accepted"), rejected: try row.decode("rejected"), expired: try row.decode("expired"),
            cancelled: try row.decode("cancelled"), nextPushAt: try row.decode("next_push_ms"),
            maxLateByMs: try row.decode("max_late_by_ms"), problems: try row.decode("problems"))
    }

    /// Drops whole monthly audit partitions that ended at or before `before` (epoch ms).
    public func pruneAudit(before: Int64, on connection: PostgresConnection) async throws -> [String] {
        try await connection.query("SELECT callwindow.drop_push_attempt_partitions(callwindow.at_ms($1)) AS name", before)
            .map { try $0.decode("name") }
    }

    /// The audit columns, in export order.
    public static let auditColumns = [
        "attempted_at", "client_account_id", "campaign_id", "window_id", "delivery_id", "caller", "receiver", "starts_at", "ends_at",
        "label_id", "label_name", "call_reason", "transport", "token_fingerprint", "http_status", "outcome", "reason", "latency_ms",
        "instance",
    ]

    /// Streams a campaign's audit rows in time order, `pageSize` at a time, as text fields
    /// (instants as ISO 8601 UTC with milliseconds); memory stays bounded by one page.
    public func exportAudit(campaignID: Int64, pageSize: Int = 10_000, on connection: PostgresConnection,
                            _ consume: ([[String?]]) throws -> Void) async throws {
        var after: (at: Int64, ctid: String) = (Int64.min, "(0,0)")
        var first = true
        while true {
            let rows = try await connection.query(
                """
                SELECT callwindow.ms_of(attempted_at) AS at_ms, ctid::text AS row_id,
                       to_char(attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS attempted_at,
                       client_account_id::text, campaign_id::text, window_id::text, delivery_id::text, caller, receiver,
                       to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS starts_at,
                       to_char(ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ends_at,
                       label_id::text, label_name, call_reason, transport, token_fingerprint, http_status::text, outcome, reason,
                       latency_ms::text, instance
                FROM callwindow.push_attempts
                WHERE campaign_id = $1 AND ($4 OR (callwindow.ms_of(attempted_at), ctid::text) > ($2, $3))
                ORDER BY callwindow.ms_of(attempted_at), ctid::text
                LIMIT $5
                """, campaignID, after.at, after.ctid, first, pageSize)
            first = false
            if rows.count == 0 { return }
            try consume(try rows.map { row in try Self.auditColumns.map { try row.decode($0, as: String?.self) } })
            let last = rows[rows.count - 1]
            after = (try last.decode("at_ms"), try last.decode("row_id"))
            if rows.count < pageSize { return }
        }
    }
}
