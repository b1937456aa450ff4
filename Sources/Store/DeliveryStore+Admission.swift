// The admission side of the delivery store: the set query that decides, no more than a second
// before each attempt, which claimed records may still be sent, and the do-not-contact sweep.

public import Foundation
public import Planning
public import Postgres

extension DeliveryStore {
    /// Suppresses the pending deliveries of an account (or of one window) whose receiver is on
    /// the account's do-not-contact list: each ends `suppressed`, with an audit row.
    @discardableResult
    public func suppressListed(clientAccountID: UUID, windowID: Int64? = nil, now: Int64, on connection: PostgresConnection) async throws -> Int {
        let scope: FinishScope = if let windowID { .listedOfWindow(windowID) } else { .listedOfAccount(clientAccountID) }
        return try await finish(scope, state: .suppressed, reason: "the receiver is on the do-not-contact list", now: now, on: connection)
    }

    /// The admission check before an attempt: which of the deliveries `claimed` (id and lease
    /// token, as `owner` claimed them) may not be attempted now, and why (`Withdrawal.decide`),
    /// in one set query. A delivery whose row is gone (its campaign was deleted) is withdrawn for
    /// good; one whose claim lease another instance now holds is let go.
    public func withdrawals(claimed: [(id: Int64, leaseToken: Int64)], owner: String, on connection: PostgresConnection) async throws -> [Int64: Withdrawal] {
        guard !claimed.isEmpty else { return [:] }
        let rows = try await Self.byIndex(readOnly: true, on: connection) { connection in try await connection.query(
            """
            SELECT i.id, c.status, l.label_type = 'dynamic' AS label_dynamic,
                   coalesce(d.state = 'in_flight' AND d.lease_owner = $2 AND d.lease_token = i.token, false) AS leased,
                   d.id IS NOT NULL AND pair.hit IS NULL AND (caller.hit IS NULL OR receiver.hit IS NULL) AS removed,
                   listed.hit IS NOT NULL AS suppressed
            FROM unnest($1::int8[], $3::int8[]) AS i(id, token)
            -- By primary key (`d.id = ANY`, and `byIndex`): joined on `d.id = i.id` alone, the
            -- planner at times hashed the input against a sequential scan of the whole queue.
            LEFT JOIN callwindow.deliveries d ON d.id = i.id AND d.id = ANY($1::int8[])
            LEFT JOIN callwindow.campaigns c ON c.id = d.campaign_id
            LEFT JOIN callwindow.labels l ON l.client_account_id = c.client_account_id AND l.id = c.label_id
            -- One index probe per record and set (LATERAL): EXISTS sublinks let the planner hash
            -- a whole table instead (every campaign's receivers, on each check).
            LEFT JOIN LATERAL (SELECT true AS hit FROM callwindow.campaign_pairs p
                               WHERE p.campaign_id = d.campaign_id AND p.caller = d.caller AND p.receiver = d.receiver LIMIT 1) pair ON true
            LEFT JOIN LATERAL (SELECT true AS hit FROM callwindow.campaign_callers cc
                               WHERE cc.campaign_id = d.campaign_id AND cc.phone = d.caller LIMIT 1) caller ON true
            LEFT JOIN LATERAL (SELECT true AS hit FROM callwindow.campaign_receivers r
                               WHERE r.campaign_id = d.campaign_id AND r.phone = d.receiver LIMIT 1) receiver ON true
            LEFT JOIN LATERAL (SELECT true AS hit FROM callwindow.do_not_contact n
                               WHERE n.client_account_id = d.client_account_id AND n.phone = d.receiver LIMIT 1) listed ON true
            """, claimed.map(\.id), owner, claimed.map(\.leaseToken)) }
        var result: [Int64: Withdrawal] = [:]
        for row in rows {
            let status: String? = try row.decode("status")
            let decided = Withdrawal.decide(
                status: try status.map(Self.campaignStatus), labelDynamic: try row.decode("label_dynamic"),
                removed: try row.decode("removed"), suppressed: try row.decode("suppressed"), leaseHeld: try row.decode("leased"))
            if let decided { result[try row.decode("id")] = decided }
        }
        return result
    }

    static func campaignStatus(_ text: String) throws -> CampaignStatus {
        guard let status = CampaignStatus(rawValue: text) else {
            throw StoreError(.invalidData, "callwindow.campaigns.status holds \"\(text)\", which this build does not know")
        }
        return status
    }
}
