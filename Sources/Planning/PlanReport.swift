public import Foundation

/// What the SQL side counted for one campaign, per window (every window of a campaign holds the
/// same records). Counts come from SQL aggregates; the planner never sees individual records.
public struct RecordCounts: Sendable, Hashable {
    /// Rows in the campaign's callers.
    public var callers: Int
    /// Rows in the campaign's receivers.
    public var receivers: Int
    /// Explicitly listed caller–receiver pairs.
    public var pairs: Int
    /// Distinct records per window after merging callers × receivers with the pairs, valid or not.
    public var records: Int
    /// Of `records`, how many fail validation (never sent).
    public var invalidRecords: Int
    /// Invalid records by reason (one sentence each, as the validator words it).
    public var invalidReasons: [String: Int]
    /// Further campaign-level problems the caller found (e.g. an unknown or non-dynamic label),
    /// one sentence each; they are reported as they are.
    public var problems: [String]

    /// Counts for one campaign.
    public init(
        callers: Int, receivers: Int, pairs: Int = 0, records: Int, invalidRecords: Int = 0,
        invalidReasons: [String: Int] = [:], problems: [String] = []
    ) {
        self.callers = callers
        self.receivers = receivers
        self.pairs = pairs
        self.records = records
        self.invalidRecords = invalidRecords
        self.invalidReasons = invalidReasons
        self.problems = problems
    }

    /// Records that will be pushed per window.
    public var validRecords: Int { max(0, records - invalidRecords) }
}

/// The plan of one window, as the preview shows it.
public struct WindowPlan: Sendable, Hashable {
    /// Position in the campaign, from 0.
    public var seq: Int
    /// Window start (epoch ms).
    public var startsAt: Int64
    /// Window end (epoch ms, exclusive).
    public var endsAt: Int64
    /// Valid records of this window; 0 when it is expired or cancelled.
    public var records: Int
    /// Push start, nil when the window is not pushed (expired, cancelled or paused campaign).
    public var pushAt: Int64?
    /// Push end, nil when the window is not pushed.
    public var pushDoneAt: Int64?
    /// `startsAt − lead`.
    public var deadline: Int64
    /// How late the push finishes after `deadline`; 0 when on time or not pushed.
    public var lateByMs: Int64
    /// `planned`, `expired` or `cancelled`.
    public var state: WindowState

    /// A window plan.
    public init(
        seq: Int, startsAt: Int64, endsAt: Int64, records: Int, pushAt: Int64?, pushDoneAt: Int64?,
        deadline: Int64, lateByMs: Int64, state: WindowState
    ) {
        self.seq = seq
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.records = records
        self.pushAt = pushAt
        self.pushDoneAt = pushDoneAt
        self.deadline = deadline
        self.lateByMs = lateByMs
        self.state = state
    }
}

/// The plan of one campaign: its counts, problems and windows.
public struct CampaignPlan: Sendable, Hashable {
    /// Campaign id.
    public var id: Int64
    /// Its client account.
    public var clientAccountID: UUID
    /// Its name.
    public var name: String
    /// Its status.
    public var status: CampaignStatus
    /// Zone of its daily hours and of the local times shown.
    public var timeZone: String
    /// Campaign start (epoch ms).
    public var startsAt: Int64
    /// Campaign end (epoch ms, exclusive).
    public var endsAt: Int64
    /// Daily hours, nil for round-the-clock.
    public var dailyStart: LocalTime?
    /// Daily hours, nil for round-the-clock.
    public var dailyEnd: LocalTime?
    /// ISO weekdays, nil for every day.
    public var weekdays: Set<Int>?
    /// Lead time before each window (ms).
    public var leadMilliseconds: Int64
    /// Priority among the account's campaigns.
    public var priority: Int
    /// Callers counted.
    public var callers: Int
    /// Receivers counted.
    public var receivers: Int
    /// Explicit pairs counted.
    public var pairs: Int
    /// Valid records per window (what is pushed for each window).
    public var recordsPerWindow: Int
    /// Invalid records per window (never sent).
    public var invalidRecords: Int
    /// Invalid records by reason.
    public var invalidReasons: [String: Int]
    /// Problems, most serious first.
    public var problems: [PlanProblem]
    /// Its windows in time order.
    public var windows: [WindowPlan]
    /// Fewest tokens with which every window of this campaign's client account (all its active
    /// campaigns together) meets its deadline; nil when no number up to 1000 does.
    public var tokensNeeded: Int?

    /// Records still to push over the planned windows.
    public var totalPushes: Int {
        windows.reduce(0) { $0 + ($1.state == .planned && $1.pushAt != nil ? $1.records : 0) }
    }

    /// Windows that finish after their deadline.
    public var lateWindows: Int { windows.count { $0.lateByMs > 0 } }
}

/// The read-only planning preview of `callwindow preview`: windows, push times and problems for
/// a set of campaigns at one instant and one pool size.
public struct PlanReport: Sendable, Hashable {
    /// The instant the plan was made for (epoch ms).
    public var now: Int64
    /// The pool assumed for every client account.
    public var capacity: Capacity
    /// Campaigns in the order given.
    public var campaigns: [CampaignPlan]

    /// A report.
    public init(now: Int64, capacity: Capacity, campaigns: [CampaignPlan]) {
        self.now = now
        self.capacity = capacity
        self.campaigns = campaigns
    }

    /// Plans every campaign's windows, schedules the pushes of each client account's active
    /// campaigns together (`PushSchedule`, as the daemon does) and collects problems.
    ///
    /// Never throws: a campaign that cannot be planned (unknown zone, bad daily hours) is
    /// reported with the error as a problem and no windows. Paused campaigns are shown with
    /// their windows but without push times, and take no capacity from the active ones.
    public static func build(
        campaigns inputs: [(campaign: Campaign, counts: RecordCounts)], capacity: Capacity, now: Int64
    ) -> PlanReport {
        var plans: [CampaignPlan] = []
        var windowsOf: [[Window]] = []
        for (campaign, counts) in inputs {
            var problems: [PlanProblem] = []
            var windows: [Window] = []
            do {
                windows = try campaign.windows()
            } catch {
                problems.append(PlanProblem(.unplannable, sentence(error.message)))
            }
            windowsOf.append(windows)
            plans.append(CampaignPlan(
                id: campaign.id, clientAccountID: campaign.clientAccountID, name: campaign.name,
                status: campaign.status, timeZone: campaign.timeZone,
                startsAt: campaign.startsAt, endsAt: campaign.endsAt,
                dailyStart: campaign.dailyStart, dailyEnd: campaign.dailyEnd, weekdays: campaign.weekdays,
                leadMilliseconds: campaign.leadMilliseconds, priority: campaign.priority,
                callers: counts.callers, receivers: counts.receivers, pairs: counts.pairs,
                recordsPerWindow: counts.validRecords, invalidRecords: counts.invalidRecords,
                invalidReasons: counts.invalidReasons, problems: problems,
                windows: windows.map { window in
                    let state = campaign.windowState(window, now: now)
                    return WindowPlan(
                        seq: window.seq, startsAt: window.startsAt, endsAt: window.endsAt,
                        records: state == .planned ? counts.validRecords : 0, pushAt: nil, pushDoneAt: nil,
                        deadline: campaign.deadline(of: window), lateByMs: 0, state: state)
                },
                tokensNeeded: 0))
        }

        // One schedule per client account, over its active campaigns' live windows.
        var accounts: [UUID: [Int]] = [:]
        var accountOrder: [UUID] = []
        for (index, (campaign, _)) in inputs.enumerated() where campaign.status == .active {
            if accounts[campaign.clientAccountID] == nil { accountOrder.append(campaign.clientAccountID) }
            accounts[campaign.clientAccountID, default: []].append(index)
        }
        for account in accountOrder {
            var demands: [PushDemand] = []
            var places: [(campaign: Int, window: Int)] = []
            for index in accounts[account] ?? [] {
                let campaign = inputs[index].campaign
                for (w, window) in windowsOf[index].enumerated() where plans[index].windows[w].state == .planned {
                    demands.append(PushDemand(campaign: campaign, window: window, records: plans[index].windows[w].records))
                    places.append((index, w))
                }
            }
            let slots = PushSchedule.plan(demands, capacity: capacity, now: now)
            for (slot, place) in zip(slots, places) {
                plans[place.campaign].windows[place.window].pushAt = slot.pushAt
                plans[place.campaign].windows[place.window].pushDoneAt = slot.pushDoneAt
                plans[place.campaign].windows[place.window].lateByMs = slot.lateByMs
            }
            let needed = PushSchedule.tokensNeeded(for: demands, capacity: capacity, now: now)
            for index in accounts[account] ?? [] { plans[index].tokensNeeded = needed }
        }

        for index in plans.indices {
            plans[index].problems += problems(of: plans[index], counts: inputs[index].counts, capacity: capacity, now: now)
        }
        return PlanReport(now: now, capacity: capacity, campaigns: plans)
    }

    /// The problems of one planned campaign, in the order a person should fix them.
    private static func problems(of plan: CampaignPlan, counts: RecordCounts, capacity: Capacity, now: Int64) -> [PlanProblem] {
        var problems: [PlanProblem] = []
        switch plan.status {
        case .cancelled: problems.append(PlanProblem(.cancelled, "The campaign is cancelled, so none of its windows will be pushed."))
        case .paused: problems.append(PlanProblem(.paused, "The campaign is paused, so its windows are not scheduled or pushed until it is active again."))
        case .active: break
        }
        problems += counts.problems.map { PlanProblem(.campaignData, sentence($0)) }
        if counts.pairs == 0 && counts.callers == 0 {
            problems.append(PlanProblem(.noCallers, "The campaign has no callers and no explicit pairs, so it has no records; add callers (or pairs)."))
        }
        if counts.pairs == 0 && counts.receivers == 0 {
            problems.append(PlanProblem(.noReceivers, "The campaign has no receivers and no explicit pairs, so it has no records; add receivers (or pairs)."))
        }
        if counts.records > 0 && counts.invalidRecords >= counts.records {
            problems.append(PlanProblem(.allRecordsInvalid, "All \(TimeFormatting.grouped(counts.records)) records are invalid (\(reasons(counts))), so nothing will be pushed."))
        } else if counts.invalidRecords > 0 {
            problems.append(PlanProblem(.someRecordsInvalid, "\(TimeFormatting.grouped(counts.invalidRecords)) of \(TimeFormatting.grouped(counts.records)) records per window are invalid and will not be sent (\(reasons(counts)))."))
        }
        if plan.endsAt <= now {
            problems.append(PlanProblem(.ended, "The campaign ended at \(TimeFormatting.iso8601(plan.endsAt)), before now (\(TimeFormatting.iso8601(now))), so nothing will be pushed."))
        } else if plan.windows.isEmpty && plan.problems.isEmpty && plan.startsAt < plan.endsAt {
            problems.append(PlanProblem(.noWindows, "The daily hours and weekdays leave no window between starts_at and ends_at."))
        } else if plan.startsAt >= plan.endsAt {
            problems.append(PlanProblem(.endsBeforeStarts, "The campaign ends (\(TimeFormatting.iso8601(plan.endsAt))) before it starts (\(TimeFormatting.iso8601(plan.startsAt))), so it has no windows."))
        }
        let late = plan.windows.filter { $0.lateByMs > 0 }
        if let worst = late.max(by: { $0.lateByMs < $1.lateByMs }) {
            let rate = formatRate(capacity.recordsPerSecond)
            let fix: String
            if let needed = plan.tokensNeeded {
                fix = "\(needed) token\(needed == 1 ? "" : "s") would meet every deadline of this client account"
            } else {
                fix = "no number of tokens can meet every deadline, because some deadlines are too close or already passed"
            }
            problems.append(PlanProblem(.lateWindows, "\(late.count) of \(plan.windows.count) windows cannot be pushed by their deadline at \(rate) records/s (worst: window \(worst.seq), late by \(TimeFormatting.duration(worst.lateByMs))); \(fix)."))
        }
        return problems
    }

    private static func reasons(_ counts: RecordCounts) -> String {
        let sorted = counts.invalidReasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        guard !sorted.isEmpty else { return "no reason given" }
        return sorted.map { "\(TimeFormatting.grouped($0.value)) × \(trimmedSentence($0.key))" }.joined(separator: "; ")
    }

    /// Records/s without float noise: `80`, `266.7`.
    static func formatRate(_ rate: Double) -> String {
        let tenths = (rate * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
    }

    /// Capitalised, with a final full stop.
    private static func sentence(_ text: String) -> String {
        guard let first = text.first else { return text }
        let capitalised = first.uppercased() + text.dropFirst()
        return capitalised.hasSuffix(".") ? capitalised : capitalised + "."
    }

    private static func trimmedSentence(_ text: String) -> String {
        text.hasSuffix(".") ? String(text.dropLast()) : text
    }
}
