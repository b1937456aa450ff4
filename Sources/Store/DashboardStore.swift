public import Foundation
public import Postgres

/// A token an account holds, as the dashboard shows it: never its secret, only its fingerprint.
public struct HeldToken: Sendable, Equatable {
    /// The token's fingerprint (12 hex digits).
    public var fingerprint: String
    /// When it stops being valid (epoch ms).
    public var expiresAt: Int64
    /// The instance holding its lease, if one does.
    public var leaseOwner: String?
}

/// One minute of an account's audit rows, for the sparkline.
public struct AttemptMinute: Sendable, Equatable {
    /// The minute's start (epoch ms, a multiple of 60,000).
    public var minuteStart: Int64
    /// Attempts the API accepted.
    public var accepted: Int
    /// Attempts answered 429.
    public var rateLimited: Int
    /// Attempts that failed: 401, 5xx, resets, timeouts, and refusals for good.
    public var errors: Int
}

/// What the overview shows for one client account.
public struct AccountSummary: Sendable, Equatable {
    /// The account.
    public var clientAccountID: UUID
    /// Tokens valid at `now` and not revoked, soonest expiry first.
    public var tokens: [HeldToken]
    /// Mints in the 30 minutes before `now` (what the shared mint budget counts).
    public var mintsLast30Minutes: Int
    /// Deliveries pending or in flight.
    public var queueDepth: Int
    /// The last 10 minutes, oldest first, one entry per minute (empty minutes included).
    public var minutes: [AttemptMinute]

    /// A summary of the given figures.
    public init(clientAccountID: UUID, tokens: [HeldToken], mintsLast30Minutes: Int, queueDepth: Int, minutes: [AttemptMinute]) {
        self.clientAccountID = clientAccountID
        self.tokens = tokens
        self.mintsLast30Minutes = mintsLast30Minutes
        self.queueDepth = queueDepth
        self.minutes = minutes
    }
}

/// One page of the campaigns of some accounts, newest first.
public struct CampaignPage: Sendable, Equatable {
    /// The page's campaigns with their progress.
    public var campaigns: [CampaignProgress]
    /// How many campaigns the accounts have in all.
    public var total: Int
    /// The id the next (older) page starts below; nil on the last page.
    public var next: Int64?

    /// A page of the given campaigns.
    public init(campaigns: [CampaignProgress], total: Int, next: Int64?) {
        self.campaigns = campaigns
        self.total = total
        self.next = next
    }
}

/// One row of `callwindow.window_progress`.
public struct WindowProgress: Sendable, Equatable {
    /// The window's id.
    public var windowID: Int64
    /// Its campaign.
    public var campaignID: Int64
    /// Window start and end (epoch ms, end exclusive).
    public var startsAt: Int64, endsAt: Int64
    /// The push deadline and the planned push start (epoch ms).
    public var deadline: Int64, pushAt: Int64
    /// The window's state.
    public var state: WindowState
    /// Records materialised, and how many of them are in each state.
    public var records: Int, pending: Int, inFlight: Int, accepted: Int, rejected: Int, expired: Int, cancelled: Int, suppressed: Int
    /// Planned lateness (ms; 0 when on time).
    public var lateByMs: Int64
}

/// Reads what the operations dashboard shows. Every statement takes `now` as a parameter and
/// reads the audit table only through `attempted_at` ranges (so partitions prune) and the
/// `(campaign_id, attempted_at)` index.
public struct DashboardStore: Sendable {
    /// A stateless store; every call takes the connection it runs on.
    public init() {}

    /// Tokens, mints, queue depth and the last 10 minutes of attempts of `clientAccountID`.
    public func account(_ clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> AccountSummary {
        let tokens = try await connection.query(
            """
            SELECT fingerprint, callwindow.ms_of(expires_at) AS expires_ms, lease_owner
            FROM callwindow.tokens
            WHERE client_account_id = $1 AND expires_at > callwindow.at_ms($2) AND revoked_at IS NULL
            ORDER BY expires_at, fingerprint
            """, clientAccountID, now
        ).map { row in
            HeldToken(fingerprint: try row.decode("fingerprint"), expiresAt: try row.decode("expires_ms"),
                      leaseOwner: try row.decode("lease_owner"))
        }
        let counts = try await connection.query(
            """
            SELECT (SELECT count(*) FROM callwindow.token_mints
                    WHERE client_account_id = $1 AND minted_at > callwindow.at_ms($2 - 1800000)
                      AND minted_at <= callwindow.at_ms($2)) AS mints,
                   (SELECT count(*) FROM callwindow.deliveries
                    WHERE client_account_id = $1 AND state IN ('pending', 'in_flight')) AS depth
            """, clientAccountID, now)[0]
        let first = (now / 60_000 - 9) * 60_000
        var minutes = (0..<10).map { AttemptMinute(minuteStart: first + Int64($0) * 60_000, accepted: 0, rateLimited: 0, errors: 0) }
        let rows = try await connection.query(
            """
            SELECT (callwindow.ms_of(attempted_at) / 60000) * 60000 AS minute,
                   count(*) FILTER (WHERE outcome = 'accepted') AS accepted,
                   count(*) FILTER (WHERE outcome = 'rate_limited') AS rate_limited,
                   count(*) FILTER (WHERE outcome IN ('unauthorized', 'transient', 'rejected')) AS errors
            FROM callwindow.push_attempts
            WHERE client_account_id = $1 AND attempted_at >= callwindow.at_ms($2) AND attempted_at < callwindow.at_ms($3)
            GROUP BY 1
            """, clientAccountID, first, first + 600_000)
        for row in rows {
            let index = Int((try row.decode("minute", as: Int64.self) - first) / 60_000)
            guard minutes.indices.contains(index) else { continue }
            minutes[index].accepted = try row.decode("accepted")
            minutes[index].rateLimited = try row.decode("rate_limited")
            minutes[index].errors = try row.decode("errors")
        }
        return AccountSummary(clientAccountID: clientAccountID, tokens: tokens, mintsLast30Minutes: try counts.decode("mints"),
                              queueDepth: try counts.decode("depth"), minutes: minutes)
    }

    /// One page of the campaigns of `clientAccountIDs` with their progress, newest (highest id)
    /// first: at most `limit` campaigns with an id below `before` (all when nil). Paged by keyset
    /// on the id, never OFFSET, so a page costs the same however many campaigns there are: the
    /// progress view aggregates only the page's windows (for the 500 campaigns the overview
    /// used to list, of 1,000 with 30 windows each, that took 60–120 ms).
    public func campaigns(of clientAccountIDs: [UUID], before: Int64? = nil, limit: Int = 50,
                          on connection: PostgresConnection) async throws -> CampaignPage {
        let size = min(max(limit, 1), 500)
        // The ids as an array, not a join: a condition on the view's grouping column is pushed
        // into it, so only these campaigns' windows are read.
        let rows = try await connection.query(
            """
            SELECT \(ProgressStore.progressColumns)
            FROM callwindow.campaign_progress
            WHERE campaign_id = ANY(ARRAY(SELECT id FROM callwindow.campaigns
                                          WHERE client_account_id = ANY($1) AND ($2::int8 IS NULL OR id < $2)
                                          ORDER BY id DESC LIMIT $3))
            ORDER BY campaign_id DESC
            """, clientAccountIDs, before, size + 1)
        var campaigns = try rows.map(ProgressStore.progress)
        let total: Int = try await connection.query(
            "SELECT count(*) AS total FROM callwindow.campaigns WHERE client_account_id = ANY($1)", clientAccountIDs
        )[0].decode("total")
        var next: Int64?
        if campaigns.count > size {
            campaigns.removeLast()
            next = campaigns.last?.campaignID
        }
        return CampaignPage(campaigns: campaigns, total: total, next: next)
    }

    /// One campaign's progress, or nil when it does not exist.
    public func campaign(_ id: Int64, on connection: PostgresConnection) async throws -> CampaignProgress? {
        let exists = try await connection.query("SELECT 1 FROM callwindow.campaigns WHERE id = $1", id).count > 0
        return exists ? try await ProgressStore().campaigns([id], on: connection).first : nil
    }

    /// The stored windows of `campaignID`, in time order (at most `limit`).
    public func windows(of campaignID: Int64, limit: Int = 2_000, on connection: PostgresConnection) async throws -> [WindowProgress] {
        try await windowRows(where: "campaign_id = $1", campaignID, limit: limit, on: connection)
    }

    /// One window of `campaignID`, or nil when the campaign has no such window.
    public func window(_ windowID: Int64, of campaignID: Int64, on connection: PostgresConnection) async throws -> WindowProgress? {
        try await windowRows(where: "campaign_id = $1 AND window_id = $2", campaignID, windowID, limit: 1, on: connection).first
    }

    private func windowRows(where condition: String, _ parameters: any PostgresEncodable..., limit: Int,
                            on connection: PostgresConnection) async throws -> [WindowProgress] {
        let rows = try await connection.query(
            """
            SELECT window_id, campaign_id, callwindow.ms_of(starts_at) AS starts_ms, callwindow.ms_of(ends_at) AS ends_ms,
                   callwindow.ms_of(deadline) AS deadline_ms, callwindow.ms_of(push_at) AS push_ms, state, records, pending,
                   in_flight, accepted, rejected, expired, cancelled, suppressed, late_by_ms
            FROM callwindow.window_progress
            WHERE \(condition)
            ORDER BY starts_at, window_id
            LIMIT \(max(1, limit))
            """, parameters: parameters)
        return try rows.map { row in
            let word: String = try row.decode("state")
            guard let state = WindowState(rawValue: word) else {
                throw StoreError(.invalidData, "window \(try row.decode("window_id", as: Int64.self)) has an unknown state")
            }
            return WindowProgress(
                windowID: try row.decode("window_id"), campaignID: try row.decode("campaign_id"),
                startsAt: try row.decode("starts_ms"), endsAt: try row.decode("ends_ms"), deadline: try row.decode("deadline_ms"),
                pushAt: try row.decode("push_ms"), state: state, records: try row.decode("records"),
                pending: try row.decode("pending"), inFlight: try row.decode("in_flight"), accepted: try row.decode("accepted"),
                rejected: try row.decode("rejected"), expired: try row.decode("expired"), cancelled: try row.decode("cancelled"),
                suppressed: try row.decode("suppressed"), lateByMs: try row.decode("late_by_ms"))
        }
    }
}

/// What the alerting gauges read for one account (`OperationsSampler`).
public struct AlertFigures: Sendable, Equatable {
    /// Mints in the shared budget's window before `now`, by every instance (the token ledger).
    public var mints: Int
    /// Deliveries pending or in flight whose push time has come.
    public var due: Int

    /// Figures of one account.
    public init(mints: Int, due: Int) {
        self.mints = mints
        self.due = due
    }
}

extension DashboardStore {
    /// For every account of `clientAccountIDs`: its mints in the `mintWindowMs` before `now`
    /// and its deliveries pending or in flight whose push time is at or before `now`. One
    /// statement whatever the number of accounts (idle cost must not grow with them).
    public func alertFigures(_ clientAccountIDs: [UUID], mintWindowMs: Int64, now: Int64,
                             on connection: PostgresConnection) async throws -> [UUID: AlertFigures] {
        let rows = try await connection.query(
            """
            SELECT a,
                   (SELECT count(*) FROM callwindow.token_mints
                    WHERE client_account_id = a AND minted_at > callwindow.at_ms($2 - $3)
                      AND minted_at <= callwindow.at_ms($2)) AS mints,
                   (SELECT count(*) FROM callwindow.deliveries
                    WHERE client_account_id = a AND state IN ('pending', 'in_flight')
                      AND push_at <= callwindow.at_ms($2)) AS due
            FROM unnest($1::uuid[]) AS a
            """, clientAccountIDs, now, mintWindowMs)
        var figures: [UUID: AlertFigures] = [:]
        for row in rows {
            figures[try row.decode("a", as: UUID.self)] = AlertFigures(mints: try row.decode("mints"), due: try row.decode("due"))
        }
        return figures
    }
}
