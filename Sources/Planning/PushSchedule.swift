// Design note — push times (the capacity model shared by `callwindow preview` and the daemon).
//
// One client account's token pool pushes at most R records/s (`Capacity.recordsPerSecond`).
// Each window must have all its records pushed by its deadline (`startsAt − lead`). Pushing
// early wastes nothing but freshness; pushing late loses calls. So:
//
// 1. Backward pass (ALAP, earliest-deadline-first read backwards): walk the live demands by
//    deadline descending; each push interval ends at min(its deadline, start of the interval
//    placed after it) and lasts ⌈records / R⌉ ms. Equal deadlines: the higher priority is
//    pushed *earlier* (placed later in this walk); then the lower (campaign id, seq) earlier.
// 2. Forward pass: walk the intervals in time order from `now`; an interval that would start
//    before `now` (or before the previous one ends) is moved to start then. Its lateness is
//    `pushDoneAt − deadline`. Because the order is EDF, this minimises the maximum lateness.
//
// Invariants of the result, per call (= per client account): intervals never overlap; none
// starts before `now`; each lasts ⌈records / R⌉ ms, so no span of time holds more than R
// records/s; where every deadline can be met, every deadline is met and each interval is as
// late as possible; `lateByMs` is 0 exactly for windows finished by their deadline.
// Zero-record demands get an empty interval at their ALAP point (not before now).
// Demands whose window has ended (`endsAt ≤ now`) are expired: they take no capacity and get an
// empty slot at `endsAt` marked `isExpired`; callers normally leave them out.
//
// Cost: one sort, O(n log n); the daemon can call it every few seconds with the remaining
// record counts of thousands of windows.

/// Identifies a window across campaigns: (campaign id, seq).
public struct WindowKey: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The campaign.
    public var campaignID: Int64
    /// The window's `seq` within its campaign.
    public var seq: Int

    /// A key.
    public init(campaignID: Int64, seq: Int) {
        self.campaignID = campaignID
        self.seq = seq
    }

    public static func < (lhs: WindowKey, rhs: WindowKey) -> Bool {
        (lhs.campaignID, lhs.seq) < (rhs.campaignID, rhs.seq)
    }

    public var description: String { "\(campaignID)/\(seq)" }
}

/// What one window asks of the pool: its records (still to push) and by when.
public struct PushDemand: Sendable, Hashable {
    /// Which window.
    public var key: WindowKey
    /// Records still to push (the daemon passes what is left; the preview the valid records).
    public var records: Int
    /// All records should be pushed by this instant (`startsAt − lead`).
    public var deadline: Int64
    /// The window's start.
    public var startsAt: Int64
    /// The window's end; a demand with `endsAt ≤ now` is expired.
    public var endsAt: Int64
    /// The campaign's priority: higher is pushed first when deadlines are equal.
    public var priority: Int

    /// A demand.
    public init(key: WindowKey, records: Int, deadline: Int64, startsAt: Int64, endsAt: Int64, priority: Int = 0) {
        self.key = key
        self.records = records
        self.deadline = deadline
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.priority = priority
    }

    /// The demand of `window` of `campaign` with `records` records to push.
    public init(campaign: Campaign, window: Window, records: Int) {
        self.init(
            key: WindowKey(campaignID: campaign.id, seq: window.seq),
            records: records,
            deadline: campaign.deadline(of: window),
            startsAt: window.startsAt,
            endsAt: window.endsAt,
            priority: campaign.priority)
    }
}

/// When one window's records are pushed: `[pushAt, pushDoneAt)` at the pool's planned rate.
public struct PushSlot: Sendable, Hashable {
    /// Which window.
    public var key: WindowKey
    /// Start pushing at this instant (never before `now`).
    public var pushAt: Int64
    /// All records are pushed by this instant.
    public var pushDoneAt: Int64
    /// The window's deadline, copied from the demand.
    public var deadline: Int64
    /// `pushDoneAt − deadline` when that is positive, else 0.
    public var lateByMs: Int64
    /// The window had already ended: nothing is pushed.
    public var isExpired: Bool

    /// A slot.
    public init(key: WindowKey, pushAt: Int64, pushDoneAt: Int64, deadline: Int64, lateByMs: Int64, isExpired: Bool = false) {
        self.key = key
        self.pushAt = pushAt
        self.pushDoneAt = pushDoneAt
        self.deadline = deadline
        self.lateByMs = lateByMs
        self.isExpired = isExpired
    }

    /// Whether the window's records finish after its deadline.
    public var isLate: Bool { lateByMs > 0 }
}

/// The capacity model: push intervals for all windows of one client account (see the design
/// note at the top of this file).
public enum PushSchedule {
    /// Push slots for `demands` (all windows of *one* client account) at `capacity`, as seen at
    /// `now`. The result is parallel to `demands`: `result[i]` is the slot of `demands[i]`.
    public static func plan(_ demands: [PushDemand], capacity: Capacity, now: Int64) -> [PushSlot] {
        var slots = demands.map { demand in
            PushSlot(
                key: demand.key, pushAt: demand.endsAt, pushDoneAt: demand.endsAt,
                deadline: demand.deadline, lateByMs: 0, isExpired: true)
        }
        let order = backwardOrder(demands, now: now)

        // Backward pass: as late as possible, earliest deadline first read backwards.
        var cursor = Int64.max
        for index in order {
            let demand = demands[index]
            let end = min(demand.deadline, cursor)
            let start = end - capacity.pushDuration(records: demand.records)
            slots[index].pushAt = start
            slots[index].pushDoneAt = end
            slots[index].isExpired = false
            if demand.records > 0 { cursor = start }
        }

        // Forward pass: nothing before now, nothing overlapping; lateness where it shows.
        var free = now
        for index in order.reversed() {
            let duration = slots[index].pushDoneAt - slots[index].pushAt
            if demands[index].records == 0 {
                let point = max(slots[index].pushAt, now)
                slots[index].pushAt = point
                slots[index].pushDoneAt = point
                continue
            }
            if slots[index].pushAt < free {
                slots[index].pushAt = free
                slots[index].pushDoneAt = free + duration
            }
            free = slots[index].pushDoneAt
            slots[index].lateByMs = max(0, slots[index].pushDoneAt - demands[index].deadline)
        }
        return slots
    }

    /// The smallest number of tokens (up to `limit`) with which every live window of `demands`
    /// is pushed by its deadline, all other settings of `capacity` kept; 0 when nothing needs
    /// pushing, nil when even `limit` tokens are not enough (for instance because a deadline
    /// has already passed).
    public static func tokensNeeded(
        for demands: [PushDemand], capacity: Capacity, now: Int64, limit: Int = 1000
    ) -> Int? {
        let pending = demands
            .filter { $0.endsAt > now && $0.records > 0 }
            .sorted { $0.deadline < $1.deadline }
        guard !pending.isEmpty else { return 0 }
        func feasible(_ tokens: Int) -> Bool {
            let pool = capacity.with(tokens: tokens)
            var finish = now
            for demand in pending {
                finish += pool.pushDuration(records: demand.records)
                if finish > demand.deadline { return false }
            }
            return true
        }
        guard limit >= 1, feasible(limit) else { return nil }
        var low = 1
        var high = limit
        while low < high {
            let middle = (low + high) / 2
            if feasible(middle) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// Indices of live demands in the order the backward pass places them.
    private static func backwardOrder(_ demands: [PushDemand], now: Int64) -> [Int] {
        demands.indices
            .filter { demands[$0].endsAt > now }
            .sorted { a, b in
                let x = demands[a]
                let y = demands[b]
                if x.deadline != y.deadline { return x.deadline > y.deadline }
                if x.priority != y.priority { return x.priority < y.priority }
                return x.key > y.key
            }
    }
}
