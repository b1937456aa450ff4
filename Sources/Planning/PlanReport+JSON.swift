public import Foundation

// The JSON form of the preview is a stable contract (issue 3):
//
// {"now": ms,
//  "capacity": {"tokens", "transport", "records_per_second", "utilisation"},
//  "campaigns": [{"id", "client_account_id", "name", "status", "problems": [..], "invalid_records",
//                 "time_zone", "starts_at", "ends_at", "callers", "receivers", "pairs",
//                 "records_per_window", "invalid_reasons": {reason: n}, "tokens_needed",
//                 "windows": [{"seq", "starts_at", "ends_at", "records", "push_at", "push_done_at",
//                              "deadline", "late_by_ms", "state"}]}]}
//
// Instants are epoch milliseconds; uuids lower case; keys sorted; `push_at`/`push_done_at` are
// null for windows that are not pushed; `tokens_needed` is null when no pool up to 1000 tokens
// meets every deadline. Fields may be added, never renamed or removed.

extension PlanReport {
    /// The report as JSON (UTF-8), keys sorted; pretty-printed unless `prettyPrinted` is false.
    public func jsonData(prettyPrinted: Bool = true) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = prettyPrinted
            ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            : [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(JSONReport(self))
        } catch {
            // Only non-finite doubles can fail, and records_per_second is made finite below.
            preconditionFailure("PlanReport JSON encoding failed: \(error)")
        }
    }

    /// `jsonData` as a string.
    public func json(prettyPrinted: Bool = true) -> String {
        String(decoding: jsonData(prettyPrinted: prettyPrinted), as: UTF8.self)
    }
}

private struct JSONReport: Encodable {
    struct CapacityJSON: Encodable {
        let tokens: Int
        let transport: String
        let records_per_second: Double
        let utilisation: Double
    }

    struct WindowJSON: Encodable {
        let plan: WindowPlan
        enum CodingKeys: String, CodingKey {
            case seq, starts_at, ends_at, records, push_at, push_done_at, deadline, late_by_ms, state
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(plan.seq, forKey: .seq)
            try c.encode(plan.startsAt, forKey: .starts_at)
            try c.encode(plan.endsAt, forKey: .ends_at)
            try c.encode(plan.records, forKey: .records)
            try c.encode(plan.pushAt, forKey: .push_at)  // null when not pushed
            try c.encode(plan.pushDoneAt, forKey: .push_done_at)
            try c.encode(plan.deadline, forKey: .deadline)
            try c.encode(plan.lateByMs, forKey: .late_by_ms)
            try c.encode(plan.state.rawValue, forKey: .state)
        }
    }

    struct CampaignJSON: Encodable {
        let plan: CampaignPlan
        enum CodingKeys: String, CodingKey {
            case id, client_account_id, name, status, problems, invalid_records, windows
            case time_zone, starts_at, ends_at, callers, receivers, pairs, records_per_window
            case invalid_reasons, tokens_needed
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(plan.id, forKey: .id)
            try c.encode(plan.clientAccountID.uuidString.lowercased(), forKey: .client_account_id)
            try c.encode(plan.name, forKey: .name)
            try c.encode(plan.status.rawValue, forKey: .status)
            try c.encode(plan.problems.map(\.message), forKey: .problems)
            try c.encode(plan.invalidRecords, forKey: .invalid_records)
            try c.encode(plan.windows.map(WindowJSON.init), forKey: .windows)
            try c.encode(plan.timeZone, forKey: .time_zone)
            try c.encode(plan.startsAt, forKey: .starts_at)
            try c.encode(plan.endsAt, forKey: .ends_at)
            try c.encode(plan.callers, forKey: .callers)
            try c.encode(plan.receivers, forKey: .receivers)
            try c.encode(plan.pairs, forKey: .pairs)
            try c.encode(plan.recordsPerWindow, forKey: .records_per_window)
            try c.encode(plan.invalidReasons, forKey: .invalid_reasons)
            try c.encode(plan.tokensNeeded, forKey: .tokens_needed)  // null when unreachable
        }
    }

    let now: Int64
    let capacity: CapacityJSON
    let campaigns: [CampaignJSON]

    init(_ report: PlanReport) {
        now = report.now
        let rate = report.capacity.recordsPerSecond
        capacity = CapacityJSON(
            tokens: report.capacity.tokens, transport: report.capacity.transport.rawValue,
            records_per_second: rate.isFinite ? rate : 0,
            utilisation: report.capacity.utilisation.isFinite ? report.capacity.utilisation : 0)
        campaigns = report.campaigns.map(CampaignJSON.init)
    }
}
