// Design note — campaigns into windows.
//
// The rule (issue 3; tests pin it):
// - Without daily hours the range [startsAt, endsAt) is cut into the fewest windows of at most
//   24 h: [startsAt + k·24h, min(startsAt + (k+1)·24h, endsAt)) for k = 0 … ⌈span/24h⌉ − 1.
// - With daily hours, every local date D (in `timeZone`) whose ISO weekday is allowed gives one
//   window from D + dailyStart to D + dailyEnd, or to D + 1 day + dailyEnd when
//   dailyEnd < dailyStart (crossing midnight), clipped to [startsAt, endsAt); empty results are
//   dropped. Dates are considered from the day before the local date of startsAt, so an
//   overnight window already under way is kept (clipped). `weekdays` picks the day a window
//   *starts* on.
// - Local times become instants with the offset in force just before a DST transition (gap →
//   shifted forward by the gap, overlap → first occurrence); see `ZoneOffsets`.
// - A window longer than 24 h (a 23 h 30 min local span across a fall-back night) is split like
//   a range without daily hours.
// - Sub-millisecond digits of `dailyStart`/`dailyEnd` are dropped.
//
// Invariants: windows lie inside [startsAt, endsAt), are non-empty, at most 24 h, never
// overlap and are numbered 0, 1, 2 … in time order. The one case where two resolved windows
// could overlap (a daily end inside a spring-forward gap, the next day's start just after it) is
// resolved by starting the later window where the earlier one ends.
//
// Cost: O(days) with a binary search over the zone's transitions per instant; the zone table is
// built once per call from Foundation's `TimeZone`.

extension Campaign {
    /// The campaign's windows in time order, by the rule in this file's design note.
    ///
    /// Throws `PlanningError` for a range over 100 years, an unknown time zone, only one of `dailyStart`/`dailyEnd`,
    /// `weekdays` without daily hours, a weekday outside 1...7 or an invalid local time.
    public func windows() throws(PlanningError) -> [Window] {
        let (span, overflow) = endsAt.subtractingReportingOverflow(startsAt)
        if overflow || span > Campaign.maximumSpan || abs(startsAt) > Campaign.maximumInstant {
            throw PlanningError(
                .rangeTooLong, campaignID: id,
                message: "starts_at..ends_at spans more than 100 years or lies outside the years 1 to 9999; check both timestamps")
        }
        guard let zone = ZoneOffsets(identifier: timeZone, from: startsAt, to: endsAt) else {
            throw PlanningError.unknownTimeZone(timeZone, campaignID: id)
        }
        return try windows(in: zone)
    }

    /// The longest campaign the planner accepts: 100 years.
    public static let maximumSpan: Int64 = 36_525 * 86_400_000
    /// Instants beyond ±this (about the years 1 and 9999) are rejected.
    static let maximumInstant: Int64 = 253_402_300_799_999

    /// `windows()` with a zone table the caller already built (the report renders with it too).
    func windows(in zone: ZoneOffsets) throws(PlanningError) -> [Window] {
        if let weekdays, let bad = weekdays.sorted().first(where: { !(1...7).contains($0) }) {
            throw PlanningError(
                .invalidWeekday, campaignID: id,
                message: "weekday \(bad) is not an ISO weekday; use 1 (Monday) to 7 (Sunday)")
        }
        switch (dailyStart, dailyEnd) {
        case (nil, nil):
            if weekdays != nil {
                throw PlanningError(
                    .weekdaysWithoutDailyHours, campaignID: id,
                    message: "weekdays are set without daily hours; set daily_start and daily_end (e.g. 00:00 and 24:00 for whole days) or clear weekdays")
            }
            var result: [Window] = []
            appendSplit(from: startsAt, to: endsAt, into: &result)
            return result
        case let (start?, end?):
            for (name, time) in [("daily_start", start), ("daily_end", end)] where !time.isValid {
                throw PlanningError(
                    .invalidLocalTime, campaignID: id,
                    message: "\(name) \(time) is not a time of day between 00:00 and 24:00")
            }
            return dailyWindows(start: start, end: end, zone: zone)
        default:
            throw PlanningError(
                .incompleteDailyHours, campaignID: id,
                message: "only one of daily_start and daily_end is set; set both for daily hours or neither for round-the-clock windows")
        }
    }

    private func dailyWindows(start: LocalTime, end: LocalTime, zone: ZoneOffsets) -> [Window] {
        guard startsAt < endsAt else { return [] }
        let day = ZoneOffsets.millisecondsPerDay
        let startOffset = start.millisecondsSinceMidnight
        let endOffset = end.millisecondsSinceMidnight + (end < start ? day : 0)
        let allowed: [Bool]? = weekdays.map { set in (0...7).map { set.contains($0) } }
        var result: [Window] = []
        var previousEnd = Int64.min
        let lastDay = zone.localDay(endsAt)
        var date = zone.localDay(startsAt) - 1
        while date <= lastDay {
            defer { date += 1 }
            if let allowed, !allowed[CivilDate.isoWeekday(ofDay: date)] { continue }
            let midnight = date * day
            let lower = max(zone.instant(local: midnight + startOffset), startsAt, previousEnd)
            let upper = min(zone.instant(local: midnight + endOffset), endsAt)
            guard lower < upper else { continue }
            appendSplit(from: lower, to: upper, into: &result)
            previousEnd = upper
        }
        return result
    }

    /// Appends [from, to) cut into the fewest pieces of at most 24 h, numbering them on.
    private func appendSplit(from: Int64, to: Int64, into result: inout [Window]) {
        var lower = from
        while lower < to {
            let upper = to - lower > Window.maximumDuration ? lower + Window.maximumDuration : to
            result.append(Window(seq: result.count, startsAt: lower, endsAt: upper))
            lower = upper
        }
    }

    /// Where `window` stands at `now`: `cancelled` when the campaign is cancelled, else
    /// `expired` once `endsAt ≤ now`, else `planned`.
    public func windowState(_ window: Window, now: Int64) -> WindowState {
        if status == .cancelled { return .cancelled }
        if window.endsAt <= now { return .expired }
        return .planned
    }

    /// The instant by which all of `window`'s records should have been pushed:
    /// `startsAt − leadMilliseconds`.
    public func deadline(of window: Window) -> Int64 {
        window.startsAt - leadMilliseconds
    }
}
