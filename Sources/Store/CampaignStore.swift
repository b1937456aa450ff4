public import Foundation
public import Planning
public import Postgres

/// A campaign as stored, with what the database knows about its label.
public struct StoredCampaign: Sendable {
    /// The campaign as its row defines it (instants in epoch ms).
    public var campaign: Campaign
    /// The label the campaign names, if `callwindow.labels` has it for the campaign's account.
    public var label: LabelInfo?
}

/// Reads campaigns and counts their records — every statement in SQL, counts by aggregation,
/// never by loading receivers into memory.
public struct CampaignStore: Sendable {
    /// A stateless store; every call takes the connection it runs on.
    public init() {}

    /// Which campaigns to read.
    public enum Selection: Sendable {
        /// Every campaign.
        case all
        /// The campaigns with these ids; an unknown id makes `campaigns(_:on:)` throw `notFound`.
        case ids([Int64])
        /// Every campaign of these client accounts.
        case clients([UUID])
    }

    static let campaignColumns = """
        c.id, c.client_account_id, c.name, c.label_id, c.label_name, c.call_reason,
        floor(extract(epoch FROM c.starts_at) * 1000)::int8 AS starts_ms,
        floor(extract(epoch FROM c.ends_at) * 1000)::int8 AS ends_ms,
        c.time_zone, c.daily_start::text AS daily_start, c.daily_end::text AS daily_end, c.weekdays,
        floor(extract(epoch FROM c.lead) * 1000)::int8 AS lead_ms, c.priority, c.status,
        l.name AS known_label_name, l.label_type AS known_label_type
        FROM callwindow.campaigns c
        LEFT JOIN callwindow.labels l ON l.client_account_id = c.client_account_id AND l.id = c.label_id
        """

    /// The selected campaigns, ordered by id. Unknown ids are an error naming them.
    public func campaigns(_ selection: Selection, on connection: PostgresConnection) async throws -> [StoredCampaign] {
        let rows: PostgresRows
        switch selection {
        case .all:
            rows = try await connection.query("SELECT \(Self.campaignColumns) ORDER BY c.id")
        case .ids(let ids):
            rows = try await connection.query("SELECT \(Self.campaignColumns) WHERE c.id = ANY($1) ORDER BY c.id", ids)
        case .clients(let clients):
            rows = try await connection.query("SELECT \(Self.campaignColumns) WHERE c.client_account_id = ANY($1) ORDER BY c.id", clients)
        }
        let campaigns = try rows.map(Self.decode)
        if case .ids(let ids) = selection {
            let found = Set(campaigns.map(\.campaign.id))
            let missing = ids.filter { !found.contains($0) }
            if !missing.isEmpty {
                throw StoreError(.notFound, "campaign \(missing.map(String.init).joined(separator: ", ")) does not exist: list campaigns with SELECT id, name FROM callwindow.campaigns")
            }
        }
        return campaigns
    }

    static func decode(_ row: PostgresRow) throws -> StoredCampaign {
        let id: Int64 = try row.decode("id")
        func time(_ column: String) throws -> LocalTime? {
            guard let text = try row.decode(column, as: String?.self) else { return nil }
            guard let time = LocalTime(parsing: text) else {
                throw StoreError(.invalidData, "campaign \(id): \(column) \(text) is not a time of day")
            }
            return time
        }
        guard let status = CampaignStatus(rawValue: try row.decode("status")) else {
            throw StoreError(.invalidData, "campaign \(id): status \(try row.decode("status", as: String.self)) is unknown")
        }
        let client: UUID = try row.decode("client_account_id")
        let labelID: UUID = try row.decode("label_id")
        let campaign = Campaign(
            id: id,
            clientAccountID: client,
            name: try row.decode("name"),
            labelID: labelID,
            labelName: try row.decode("label_name"),
            callReason: try row.decode("call_reason"),
            startsAt: try row.decode("starts_ms"),
            endsAt: try row.decode("ends_ms"),
            timeZone: try row.decode("time_zone"),
            dailyStart: try time("daily_start"),
            dailyEnd: try time("daily_end"),
            weekdays: try row.decode("weekdays", as: [Int]?.self).map(Set.init),
            leadMilliseconds: try row.decode("lead_ms"),
            priority: try row.decode("priority"),
            status: status
        )
        var label: LabelInfo?
        if let name = try row.decode("known_label_name", as: String?.self) {
            label = LabelInfo(id: labelID, clientAccountID: client, name: name,
                              isDynamic: try row.decode("known_label_type", as: String.self) == "dynamic")
        }
        return StoredCampaign(campaign: campaign, label: label)
    }

    /// Counts a campaign's records per window and validates them by the API's rules.
    ///
    /// Records are every caller × every receiver plus the explicit pairs, duplicates merged;
    /// texts resolve pair → receiver → campaign. Validation runs once per distinct
    /// (label name, call reason) combination, so the cost is one aggregate over the receivers.
    public func recordCounts(
        of stored: StoredCampaign, naming: FieldNaming, validator: RecordValidator = RecordValidator(),
        on connection: PostgresConnection
    ) async throws -> RecordCounts {
        let id = stored.campaign.id
        let sizes = try await connection.query(
            """
            SELECT (SELECT count(*) FROM callwindow.campaign_callers WHERE campaign_id = $1 AND phone NOT LIKE 'erased-%') AS callers,
                   (SELECT count(*) FROM callwindow.campaign_receivers WHERE campaign_id = $1 AND phone NOT LIKE 'erased-%') AS receivers,
                   (SELECT count(*) FROM callwindow.campaign_pairs
                    WHERE campaign_id = $1 AND caller NOT LIKE 'erased-%' AND receiver NOT LIKE 'erased-%') AS pairs
            """, id)[0]
        let callers: Int = try sizes.decode("callers")
        let receivers: Int = try sizes.decode("receivers")
        let pairs: Int = try sizes.decode("pairs")
        // Distinct (label name, call reason) combinations with their record counts. Pairs that
        // are also in the cross product replace that record's texts instead of adding a record.
        let combinations = try await connection.query(
            """
            WITH campaign AS (
              SELECT label_name, call_reason FROM callwindow.campaigns WHERE id = $1
            ), crossed AS (
              SELECT coalesce(r.label_name, c.label_name) AS label_name,
                     coalesce(r.call_reason, c.call_reason) AS call_reason,
                     count(*) * $2::int8 AS records
              FROM callwindow.campaign_receivers r, campaign c
              WHERE r.campaign_id = $1 AND $2::int8 > 0 AND r.phone NOT LIKE 'erased-%'
              GROUP BY 1, 2
            ), pair_rows AS (
              SELECT p.label_name, p.call_reason, r.label_name AS receiver_label_name,
                     r.call_reason AS receiver_call_reason,
                     (r.phone IS NOT NULL AND EXISTS (
                        SELECT 1 FROM callwindow.campaign_callers cc
                        WHERE cc.campaign_id = $1 AND cc.phone = p.caller)) AS in_cross_product
              FROM callwindow.campaign_pairs p
              LEFT JOIN callwindow.campaign_receivers r ON r.campaign_id = p.campaign_id AND r.phone = p.receiver
              WHERE p.campaign_id = $1 AND p.caller NOT LIKE 'erased-%' AND p.receiver NOT LIKE 'erased-%'
            ), adjusted AS (
              SELECT * FROM crossed
              UNION ALL
              SELECT coalesce(p.receiver_label_name, c.label_name), coalesce(p.receiver_call_reason, c.call_reason), -count(*)
              FROM pair_rows p, campaign c WHERE p.in_cross_product GROUP BY 1, 2
              UNION ALL
              SELECT coalesce(p.label_name, p.receiver_label_name, c.label_name),
                     coalesce(p.call_reason, p.receiver_call_reason, c.call_reason), count(*)
              FROM pair_rows p, campaign c GROUP BY 1, 2
            )
            SELECT label_name, call_reason, sum(records)::int8 AS records
            FROM adjusted GROUP BY 1, 2 HAVING sum(records) <> 0
            """, id, callers)
        var records = 0
        var invalid = 0
        var reasons: [String: Int] = [:]
        var problems: [String] = []
        let campaign = stored.campaign
        let labelProblem: String? = switch stored.label {
        case .none: "label \(campaign.labelID) is not a label of client account \(campaign.clientAccountID) (run callwindow labels sync)"
        case .some(let label) where !label.isDynamic: "label \(campaign.labelID) is a static label; only dynamic labels can be used"
        default: nil
        }
        if let labelProblem { problems.append(labelProblem) }
        for row in combinations {
            let count: Int = try row.decode("records")
            records += count
            if let labelProblem {
                invalid += count
                reasons[labelProblem, default: 0] += count
                continue
            }
            // Phones and window times are checked elsewhere (the schema, the planner); here
            // only the texts can differ between records.
            let probe = CallRecord(
                caller: "10000000", receiver: "10000000", startsAt: 0, endsAt: 1, labelID: campaign.labelID,
                labelName: try row.decode("label_name"), callReason: try row.decode("call_reason"))
            let violations = validator.validateFields(probe, naming: naming, now: 0)
            if !violations.isEmpty {
                invalid += count
                for violation in violations { reasons[violation.description, default: 0] += count }
            }
        }
        return RecordCounts(callers: callers, receivers: receivers, pairs: pairs, records: records,
                            invalidRecords: invalid, invalidReasons: reasons, problems: problems)
    }
}
