import Foundation

// The text form of the preview: per campaign a summary, an aligned table of windows (local
// time and UTC, records, push start/finish, deadline, lateness, state) and its warnings last.

extension PlanReport {
    /// The report as a plain-text table for a terminal.
    ///
    /// - Parameter maxRows: show at most this many windows per campaign (the first and last
    ///   ones, with "… N more windows …" between); nil shows every window.
    public func text(maxRows: Int? = nil) -> String {
        var out: [String] = []
        let rate = PlanReport.formatRate(capacity.recordsPerSecond)
        let percent = Int((capacity.utilisation * 100).rounded())
        out.append("CallWindow preview at \(TimeFormatting.iso8601(now))")
        out.append("Pool per client account: \(capacity.tokens) token\(capacity.tokens == 1 ? "" : "s") on \(capacity.transport.rawValue) = \(rate) records/s (\(percent)% of the limit)")
        if campaigns.isEmpty { out += ["", "No campaigns."] }
        for plan in campaigns {
            out.append("")
            out += Self.textBlock(plan, maxRows: maxRows)
        }
        return out.joined(separator: "\n") + "\n"
    }

    private static func textBlock(_ plan: CampaignPlan, maxRows: Int?) -> [String] {
        var out: [String] = []
        let zone = ZoneOffsets(identifier: plan.timeZone, from: plan.startsAt, to: plan.endsAt)
            ?? ZoneOffsets(identifier: "UTC", from: plan.startsAt, to: plan.endsAt)
        func local(_ instant: Int64, _ precision: TimeFormatting.Precision) -> String {
            guard let zone else { return TimeFormatting.dateTime(wall: instant, precision: precision) }
            return TimeFormatting.dateTime(wall: zone.local(instant), precision: precision)
                + TimeFormatting.offset(zone.offset(at: instant))
        }

        out.append("Campaign \(plan.id) \"\(plan.name)\" — \(plan.status.rawValue) — client account \(plan.clientAccountID.uuidString.lowercased())")
        var hours = "round the clock"
        if let start = plan.dailyStart, let end = plan.dailyEnd {
            hours = "daily \(start)–\(end)\(end < start ? " (overnight)" : "")"
            if let days = plan.weekdays {
                hours += " on " + (days.isEmpty ? "no weekday" : days.sorted().map { TimeFormatting.weekdayNames[$0] }.joined(separator: ","))
            }
        }
        out.append("  Period     \(local(plan.startsAt, .minutes)) → \(local(plan.endsAt, .minutes)) (\(plan.timeZone)), \(hours), lead \(TimeFormatting.duration(plan.leadMilliseconds)), priority \(plan.priority)")
        func count(_ n: Int, _ noun: String) -> String { "\(TimeFormatting.grouped(n)) \(noun)\(n == 1 ? "" : "s")" }
        out.append("  Records    \(count(plan.callers, "caller")) × \(count(plan.receivers, "receiver")) + \(count(plan.pairs, "explicit pair")) → \(TimeFormatting.grouped(plan.recordsPerWindow)) valid records per window, \(TimeFormatting.grouped(plan.invalidRecords)) invalid")
        for (reason, count) in plan.invalidReasons.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            out.append("             \(TimeFormatting.grouped(count)) invalid: \(reason)")
        }
        let byState = Dictionary(grouping: plan.windows, by: \.state).mapValues(\.count)
        let states = WindowState.allCases.compactMap { s in byState[s].map { "\($0) \(s.rawValue)" } }.joined(separator: ", ")
        out.append("  Windows    \(plan.windows.count)\(states.isEmpty ? "" : " (\(states))"), \(plan.lateWindows) late; total pushes \(TimeFormatting.grouped(plan.totalPushes))")
        let needed = plan.tokensNeeded.map { "\($0)" } ?? "more than 1000 (or a deadline has passed)"
        out.append("  Tokens     \(needed) needed to meet every deadline of the client account")

        if !plan.windows.isEmpty {
            out.append("")
            out += table(plan, zone: zone, maxRows: maxRows)
        }
        if !plan.problems.isEmpty {
            out.append("")
            out.append("  Warnings")
            out += plan.problems.map { "  ! \($0.message)" }
        }
        return out
    }

    private static func table(_ plan: CampaignPlan, zone: ZoneOffsets?, maxRows: Int?) -> [String] {
        let windowPrecision = plan.windows.reduce(TimeFormatting.Precision.minutes) { p, w in
            max(p, .needed(for: w.startsAt), .needed(for: w.endsAt),
                zone.map { max(.needed(for: $0.local(w.startsAt)), .needed(for: $0.local(w.endsAt))) } ?? .minutes)
        }
        let pushPrecision = plan.windows.contains { w in
            [w.pushAt, w.pushDoneAt, w.deadline].contains { $0.map { floorModulo($0, 1000) != 0 } ?? false }
        } ? TimeFormatting.Precision.milliseconds : .seconds

        func span(_ a: Int64, _ b: Int64, shift: (Int64) -> Int64, suffix: (Int64) -> String) -> String {
            let la = shift(a)
            let lb = shift(b)
            let dayA = floorDivide(la, 86_400_000)
            let dayB = floorDivide(lb, 86_400_000)
            let weekday = TimeFormatting.weekdayNames[CivilDate.isoWeekday(ofDay: dayA)]
            let start = TimeFormatting.dateTime(wall: la, precision: windowPrecision)
            var end = TimeFormatting.time(ofDay: lb - dayB * 86_400_000, precision: windowPrecision)
            if dayB != dayA {
                end = String(TimeFormatting.date(day: dayB).dropFirst(5)) + " " + end
            }
            let sa = suffix(a)
            let sb = suffix(b)
            return "\(weekday) \(start)\(sa == sb ? "" : sa) → \(end)\(sb)"
        }
        func shortUTC(_ instant: Int64?) -> String {
            guard let instant else { return "—" }
            return String(TimeFormatting.dateTime(wall: instant, precision: pushPrecision).dropFirst(5))
        }

        let localHeader = "local window (\(plan.timeZone))"
        let header = ["seq", localHeader, "UTC window", "records", "push start UTC", "push done UTC", "deadline UTC", "late", "state"]
        let rightAligned: Set<Int> = [0, 3, 7]
        func row(_ w: WindowPlan) -> [String] {
            let localText = zone.map { z in
                span(w.startsAt, w.endsAt, shift: z.local, suffix: { " " + TimeFormatting.offset(z.offset(at: $0)) })
            } ?? span(w.startsAt, w.endsAt, shift: { $0 }, suffix: { _ in "" })
            return [
                "\(w.seq)",
                localText,
                span(w.startsAt, w.endsAt, shift: { $0 }, suffix: { _ in "" }),
                TimeFormatting.grouped(w.records),
                shortUTC(w.pushAt),
                shortUTC(w.pushDoneAt),
                shortUTC(w.deadline),
                w.lateByMs > 0 ? TimeFormatting.duration(w.lateByMs) : "—",
                w.lateByMs > 0 ? "\(w.state.rawValue) LATE" : w.state.rawValue,
            ]
        }

        // Rows shown: all, or (with maxRows) the first and last windows, the late ones and the
        // next ones to push; `Int?.none` marks "… N more windows …".
        var rows: [(cells: [String]?, elided: Int)] = []
        let shown = Self.rowsToShow(plan.windows, maxRows: maxRows)
        var previous = -1
        for index in shown {
            if index > previous + 1 { rows.append((nil, index - previous - 1)) }
            rows.append((row(plan.windows[index]), 0))
            previous = index
        }
        if previous < plan.windows.count - 1 { rows.append((nil, plan.windows.count - 1 - previous)) }
        var widths = header.map(\.count)
        for case let r? in rows.map(\.cells) {
            for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }
            var text = "  " + padded.joined(separator: "  ")
            while text.last == " " { text.removeLast() }
            return text
        }
        var out = [line(header), "  " + widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ")]
        for r in rows {
            if let cells = r.cells {
                out.append(line(cells))
            } else {
                out.append("  … \(TimeFormatting.grouped(r.elided)) more window\(r.elided == 1 ? "" : "s") …")
            }
        }
        return out
    }

    /// Indices of the windows a table of at most `maxRows` rows shows, ascending: the first and
    /// last windows, late windows (up to a third), the next windows to push, then the earliest.
    static func rowsToShow(_ windows: [WindowPlan], maxRows: Int?) -> [Int] {
        guard let maxRows, windows.count > max(maxRows, 2) else { return Array(windows.indices) }
        let limit = max(maxRows, 2)
        var chosen: Set<Int> = [0, windows.count - 1]
        for index in windows.indices where windows[index].lateByMs > 0 && chosen.count < max(limit / 3, 2) + 2 {
            chosen.insert(index)
        }
        let next = windows.firstIndex { $0.state == .planned } ?? 0
        var candidate = max(next - 1, 0)
        while chosen.count < limit && candidate < windows.count {
            chosen.insert(candidate)
            candidate += 1
        }
        return chosen.sorted()
    }
}
