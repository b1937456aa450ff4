// The window side of the delivery store: syncing planned windows, materialising them into
// deliveries, the live windows the planner schedules around, and the campaign state it saves.

public import Foundation
public import Planning
public import Postgres

extension DeliveryStore {
    /// What `syncWindows` changed.
    public struct WindowSync: Sendable, Equatable {
        /// Windows inserted, or planned ones whose push time was rewritten.
        public var upserted = 0
        /// Planned windows deleted because the plan no longer has them.
        public var removed = 0
        /// Pending deliveries cancelled with the materialised windows the plan dropped.
        public var cancelled = 0
        /// A result with the given counts (all zero by default).
        public init(upserted: Int = 0, removed: Int = 0, cancelled: Int = 0) {
            self.upserted = upserted
            self.removed = removed
            self.cancelled = cancelled
        }
    }

    /// Makes the stored windows of a campaign match `windows`: new ones are added, planned ones
    /// get their new push time, planned ones no longer wanted are removed, and materialised ones
    /// no longer wanted are cancelled with their pending deliveries. `windows` holds only the
    /// windows that have not ended, so windows that ended are left as they are (expired or done).
    public func syncWindows(campaignID: Int64, clientAccountID: UUID, windows: [PlannedWindow], now: Int64,
                            on connection: PostgresConnection) async throws -> WindowSync {
        var sync = WindowSync()
        sync.upserted = try await connection.execute(
            """
            INSERT INTO callwindow.windows (client_account_id, campaign_id, starts_at, ends_at, deadline, push_at, late_by_ms, planned_at,
                                            planned_records)
            SELECT $1, $2, callwindow.at_ms(s), callwindow.at_ms(e), callwindow.at_ms(d), callwindow.at_ms(p), l, callwindow.at_ms($8), r
            FROM unnest($3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $9::int4[]) AS t(s, e, d, p, l, r)
            ON CONFLICT (campaign_id, starts_at, ends_at) DO UPDATE
              SET deadline = excluded.deadline, push_at = excluded.push_at, late_by_ms = excluded.late_by_ms, planned_at = excluded.planned_at,
                  planned_records = excluded.planned_records
              WHERE callwindow.windows.state = 'planned'
            """,
            clientAccountID, campaignID, windows.map(\.startsAt), windows.map(\.endsAt), windows.map(\.deadline),
            windows.map(\.pushAt), windows.map(\.lateByMs), now, windows.map { Int32(clamping: $0.records) })
        let starts = windows.map(\.startsAt)
        let ends = windows.map(\.endsAt)
        sync.removed = try await connection.execute(
            """
            DELETE FROM callwindow.windows w
            WHERE w.campaign_id = $1 AND w.state = 'planned' AND w.ends_at > callwindow.at_ms($4)
              AND (callwindow.ms_of(w.starts_at), callwindow.ms_of(w.ends_at)) NOT IN (SELECT * FROM unnest($2::int8[], $3::int8[]))
            """, campaignID, starts, ends, now)
        let stale = try await connection.query(
            """
            UPDATE callwindow.windows w SET state = 'cancelled'
            WHERE w.campaign_id = $1 AND w.state = 'materialized' AND w.ends_at > callwindow.at_ms($4)
              AND (callwindow.ms_of(w.starts_at), callwindow.ms_of(w.ends_at)) NOT IN (SELECT * FROM unnest($2::int8[], $3::int8[]))
            RETURNING w.id
            """, campaignID, starts, ends, now)
        for row in stale {
            sync.cancelled += try await cancelPending(windowID: try row.decode("id"), reason: "the campaign was re-planned without this window", now: now, on: connection)
        }
        return sync
    }

    /// Creates the deliveries of a window: one row per caller × receiver plus explicit pairs,
    /// texts resolved pair → receiver → campaign, in one INSERT … SELECT. Idempotent (records
    /// already present are kept), so running it again picks up receivers added since.
    /// Returns the number of records created now.
    @discardableResult
    public func materialize(windowID: Int64, now: Int64, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            """
            WITH w AS (
              SELECT w.id, w.client_account_id, w.campaign_id, w.starts_at, w.ends_at, w.deadline, w.push_at,
                     c.label_id, c.label_name, c.call_reason, c.priority
              FROM callwindow.windows w JOIN callwindow.campaigns c ON c.id = w.campaign_id
              WHERE w.id = $1 AND w.state IN ('planned', 'materialized')
            ), records AS (
              SELECT cc.phone AS caller, r.phone AS receiver,
                     coalesce(p.label_name, r.label_name) AS label_name, coalesce(p.call_reason, r.call_reason) AS call_reason
              FROM w
              JOIN callwindow.campaign_callers cc ON cc.campaign_id = w.campaign_id
              JOIN callwindow.campaign_receivers r ON r.campaign_id = w.campaign_id
              LEFT JOIN callwindow.campaign_pairs p ON p.campaign_id = w.campaign_id AND p.caller = cc.phone AND p.receiver = r.phone
              WHERE cc.phone NOT LIKE 'erased-%' AND r.phone NOT LIKE 'erased-%'  -- erased people are never pushed again
              UNION ALL
              SELECT p.caller, p.receiver, coalesce(p.label_name, r.label_name), coalesce(p.call_reason, r.call_reason)
              FROM w
              JOIN callwindow.campaign_pairs p ON p.campaign_id = w.campaign_id
              LEFT JOIN callwindow.campaign_receivers r ON r.campaign_id = p.campaign_id AND r.phone = p.receiver
              WHERE p.caller NOT LIKE 'erased-%' AND p.receiver NOT LIKE 'erased-%' AND NOT (r.phone IS NOT NULL AND EXISTS (
                SELECT 1 FROM callwindow.campaign_callers cc WHERE cc.campaign_id = p.campaign_id AND cc.phone = p.caller))
            ), inserted AS (
              INSERT INTO callwindow.deliveries (client_account_id, campaign_id, window_id, caller, receiver, label_id, label_name,
                                                 call_reason, starts_at, ends_at, deadline, push_at, priority, next_attempt_at)
              SELECT w.client_account_id, w.campaign_id, w.id, r.caller, r.receiver, w.label_id, coalesce(r.label_name, w.label_name),
                     coalesce(r.call_reason, w.call_reason), w.starts_at, w.ends_at, w.deadline, w.push_at, w.priority, w.push_at
              FROM w, records r
              ON CONFLICT (window_id, caller, receiver) DO NOTHING
              RETURNING 1
            )
            UPDATE callwindow.windows SET state = 'materialized', materialized_at = coalesce(materialized_at, callwindow.at_ms($2)),
                   records = records + (SELECT count(*) FROM inserted)
            WHERE id = $1 AND state IN ('planned', 'materialized')
            RETURNING (SELECT count(*) FROM inserted) AS created
            """, windowID, now)
        return try rows.first?.decode("created", as: Int.self) ?? 0
    }

    /// Windows (id, campaign) of an account whose push starts before `horizonEnd` and are not
    /// materialised yet, earliest push first.
    public func windowsToMaterialize(clientAccountID: UUID, horizonEnd: Int64, now: Int64,
                                     on connection: PostgresConnection) async throws -> [(id: Int64, campaignID: Int64)] {
        try await connection.query(
            """
            SELECT w.id, w.campaign_id FROM callwindow.windows w JOIN callwindow.campaigns c ON c.id = w.campaign_id
            WHERE w.client_account_id = $1 AND w.state = 'planned' AND w.push_at <= callwindow.at_ms($2)
              AND w.ends_at > callwindow.at_ms($3) AND c.status = 'active'
            ORDER BY w.push_at
            """, clientAccountID, horizonEnd, now).map { (try $0.decode("id"), try $0.decode("campaign_id")) }
    }

    /// A live window as the planner sees it: what is left to push.
    public struct LiveWindow: Sendable {
        /// The window's row id.
        public var id: Int64
        /// The campaign it belongs to.
        public var campaignID: Int64
        /// The window's start (epoch ms).
        public var startsAt: Int64
        /// The window's end (epoch ms).
        public var endsAt: Int64
        /// `planned` or `materialized` (windows in other states are not live).
        public var state: WindowState
        /// Records still to push (pending or in flight) of a materialised window.
        public var remaining: Int
    }

    /// The account's windows that have not ended, with what remains of materialised ones.
    public func liveWindows(clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> [LiveWindow] {
        try await connection.query(
            """
            SELECT w.id, w.campaign_id, callwindow.ms_of(w.starts_at) AS starts_ms, callwindow.ms_of(w.ends_at) AS ends_ms, w.state,
                   (SELECT count(*) FROM callwindow.deliveries d WHERE d.window_id = w.id AND d.state IN ('pending', 'in_flight')) AS remaining
            FROM callwindow.windows w
            WHERE w.client_account_id = $1 AND w.ends_at > callwindow.at_ms($2) AND w.state IN ('planned', 'materialized')
            """, clientAccountID, now).map { row in
            LiveWindow(id: try row.decode("id"), campaignID: try row.decode("campaign_id"), startsAt: try row.decode("starts_ms"),
                       endsAt: try row.decode("ends_ms"), state: try Self.windowState(try row.decode("state")), remaining: try row.decode("remaining"))
        }
    }

    /// A stored window state, or an error naming the unknown word.
    static func windowState(_ text: String) throws -> WindowState {
        guard let state = WindowState(rawValue: text) else {
            throw StoreError(.invalidData, "callwindow.windows.state holds \"\(text)\", which this build does not know")
        }
        return state
    }

    /// Records what the planner found about a campaign.
    public func saveCampaignState(campaignID: Int64, clientAccountID: UUID, problems: [String], invalidRecords: Int, now: Int64,
                                  on connection: PostgresConnection) async throws {
        try await connection.execute(
            """
            INSERT INTO callwindow.campaign_state (campaign_id, client_account_id, problems, invalid_records, planned_at)
            VALUES ($1, $2, $3, $4, callwindow.at_ms($5))
            ON CONFLICT (campaign_id) DO UPDATE
              SET problems = excluded.problems, invalid_records = excluded.invalid_records, planned_at = excluded.planned_at
            """, campaignID, clientAccountID, problems, invalidRecords, now)
    }

    /// Planned windows that ended before they were materialised become `expired`: their planned
    /// records count as expired, and each gets a `window_outcomes` row.
    @discardableResult
    public func expireWindows(clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await expireWindows(clientAccountIDs: [clientAccountID], now: now, on: connection)
    }

    /// `expireWindows` for every account of `clientAccountIDs` in one statement.
    @discardableResult
    public func expireWindows(clientAccountIDs: [UUID], now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await connection.query(
            """
            WITH expired AS (
              UPDATE callwindow.windows SET state = 'expired', records = planned_records, expired = expired + planned_records
              WHERE client_account_id = ANY($1::uuid[]) AND state = 'planned' AND ends_at <= callwindow.at_ms($2)
              RETURNING *
            ), trail AS (
              INSERT INTO callwindow.window_outcomes (at, client_account_id, campaign_id, window_id, starts_at, ends_at, outcome, records, reason, instance)
              SELECT callwindow.at_ms($2), client_account_id, campaign_id, id, starts_at, ends_at, 'expired', planned_records,
                     'the window ended before it was materialised (campaign paused, label problem or planner away)', $3
              FROM expired
            )
            SELECT count(*) AS n FROM expired
            """, clientAccountIDs, now, instance)[0].decode("n", as: Int.self)
    }
}
