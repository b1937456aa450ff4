import Foundation

// The SVG form of the preview: a timeline, one lane per campaign. Windows are bars coloured by
// state (late ones highlighted), push intervals a thin row just above them, a red "now" line, an
// axis in local time whose ticks adapt to the span (hours for a day, days or weeks for months),
// a legend and a title. Every bar carries a <title> tooltip. Pure string building: the output is
// well-formed XML whatever the campaign names contain.

extension PlanReport {
    /// Layout of the SVG timeline; the defaults suit a screen or a README.
    public struct SVGOptions: Sendable, Hashable {
        /// Total width in px; default 1200.
        public var width: Int
        /// Height of one campaign lane in px; default 58.
        public var laneHeight: Int
        /// Zone of the time axis; default nil = the first campaign's zone.
        public var timeZone: String?

        /// Options with the documented defaults.
        public init(width: Int = 1200, laneHeight: Int = 58, timeZone: String? = nil) {
            self.width = width
            self.laneHeight = laneHeight
            self.timeZone = timeZone
        }
    }

    /// The report as a standalone SVG document.
    public func svg(options: SVGOptions = SVGOptions()) -> String {
        SVGTimeline(report: self, options: options).render()
    }
}

private struct SVGTimeline {
    let report: PlanReport
    let options: PlanReport.SVGOptions

    // Palette (colour-blind friendly enough: blue / orange / grey, plus shape cues), shared with
    // the dashboard through `TimelinePalette`.
    static let planned = TimelinePalette.planned
    static let late = TimelinePalette.late
    static let lateStroke = TimelinePalette.lateStroke
    static let expired = TimelinePalette.expired
    static let cancelled = TimelinePalette.cancelled
    static let cancelledStroke = TimelinePalette.cancelledStroke
    static let paused = TimelinePalette.paused
    static let push = TimelinePalette.push
    static let pushLate = TimelinePalette.pushLate
    static let now = TimelinePalette.now
    static let text = TimelinePalette.text
    static let muted = TimelinePalette.muted
    static let grid = TimelinePalette.grid
    static let gridMinor = TimelinePalette.gridMinor
    static let laneShade = TimelinePalette.laneShade
    static let band = TimelinePalette.band
    static let bandStroke = TimelinePalette.bandStroke
    static let font = TimelinePalette.font

    let left = 24.0
    let right = 24.0
    let top = 118.0

    func render() -> String {
        let width = Double(max(options.width, 400))
        let lanes = max(report.campaigns.count, 1)
        let laneHeight = Double(max(options.laneHeight, 40))
        let height = top + Double(lanes) * laneHeight + 34
        let plotWidth = width - left - right

        let zoneName = options.timeZone ?? report.campaigns.first?.timeZone ?? "UTC"
        let (t0, t1, nowVisible) = domain()
        let zone = ZoneOffsets(identifier: zoneName, from: t0, to: t1)
            ?? ZoneOffsets(identifier: "UTC", from: t0, to: t1)
        let axisZoneName = zone?.identifier ?? "UTC"
        func x(_ t: Int64) -> Double { left + Double(t - t0) / Double(t1 - t0) * plotWidth }

        var svg: [String] = []
        svg.append(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        svg.append(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))" font-family="\#(Self.font)" font-size="12">"#)
        svg.append(#"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="\#(Self.cancelled)"/><line x1="0" y1="0" x2="0" y2="6" stroke="\#(Self.cancelledStroke)" stroke-width="1.5"/></pattern></defs>"#)
        svg.append(#"<rect width="100%" height="100%" fill="white"/>"#)

        // Title and subtitle.
        let count = report.campaigns.count
        let title = count == 1
            ? "Push plan: \(report.campaigns[0].name)"
            : "Push plan: \(count) campaign\(count == 1 ? "" : "s")"
        svg.append(#"<text x="\#(fmt(left))" y="30" font-size="20" font-weight="600" fill="\#(Self.text)">\#(escape(truncated(title, 90)))</text>"#)
        let rate = PlanReport.formatRate(report.capacity.recordsPerSecond)
        var subtitle = "at \(TimeFormatting.iso8601(report.now)) · \(report.capacity.tokens) token\(report.capacity.tokens == 1 ? "" : "s") on \(report.capacity.transport.rawValue) = \(rate) records/s per client account · axis in \(axisZoneName) local time"
        if !nowVisible { subtitle += report.now < t0 ? " · now is before the timeline" : " · now is after the timeline" }
        svg.append(#"<text x="\#(fmt(left))" y="50" fill="\#(Self.muted)">\#(escape(subtitle))</text>"#)

        // Legend.
        var lx = left
        let ly = 66.0
        func legend(_ label: String, _ swatch: String, width w: Double = 22) {
            svg.append(swatch.replacingOccurrences(of: "{x}", with: fmt(lx)).replacingOccurrences(of: "{y}", with: fmt(ly)))
            svg.append(#"<text x="\#(fmt(lx + w + 6))" y="\#(fmt(ly + 10))" fill="\#(Self.text)">\#(escape(label))</text>"#)
            lx += w + 22 + Double(label.count) * 7.2
        }
        legend("planned window", #"<rect x="{x}" y="{y}" width="22" height="12" rx="2" fill="\#(Self.planned)"/>"#)
        legend("late (misses its deadline)", #"<rect x="{x}" y="{y}" width="22" height="12" rx="2" fill="\#(Self.late)" stroke="\#(Self.lateStroke)" stroke-width="1.5"/>"#)
        legend("expired", #"<rect x="{x}" y="{y}" width="22" height="12" rx="2" fill="\#(Self.expired)"/>"#)
        legend("cancelled", #"<rect x="{x}" y="{y}" width="22" height="12" rx="2" fill="url(#hatch)" stroke="\#(Self.cancelledStroke)"/>"#)
        if report.campaigns.contains(where: { $0.status == .paused }) {
            legend("paused (not scheduled)", #"<rect x="{x}" y="{y}" width="22" height="12" rx="2" fill="\#(Self.paused)"/>"#)
        }
        legend("push interval", #"<rect x="{x}" y="{y}" width="22" height="5" fill="\#(Self.push)" transform="translate(0 4)"/>"#)
        legend("now", #"<rect x="{x}" y="{y}" width="2" height="16" fill="\#(Self.now)" transform="translate(10 -2)"/>"#, width: 22)

        // Axis: grid lines through every lane, labels above.
        let plotBottom = top + Double(lanes) * laneHeight
        let ticks = zone.map { axisTicks(t0: t0, t1: t1, zone: $0, plotWidth: plotWidth) } ?? (major: [], minor: [])
        for t in ticks.minor {
            svg.append(#"<line x1="\#(fmt(x(t)))" y1="\#(fmt(top - 4))" x2="\#(fmt(x(t)))" y2="\#(fmt(plotBottom))" stroke="\#(Self.gridMinor)"/>"#)
        }
        for (t, label, strong) in ticks.major {
            let fits = x(t) + 3 + Double(label.count) * 7 <= width - 4
            svg.append(#"<line x1="\#(fmt(x(t)))" y1="\#(fmt(top - 10))" x2="\#(fmt(x(t)))" y2="\#(fmt(plotBottom))" stroke="\#(Self.grid)" stroke-width="\#(strong ? "1.5" : "1")"/>"#)
            guard fits else { continue }
            svg.append(#"<text x="\#(fmt(x(t) + 3))" y="\#(fmt(top - 14))" fill="\#(strong ? Self.text : Self.muted)"\#(strong ? #" font-weight="600""# : "")>\#(escape(label))</text>"#)
        }
        svg.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(top))" x2="\#(fmt(left + plotWidth))" y2="\#(fmt(top))" stroke="\#(Self.muted)"/>"#)

        // Lanes.
        for (i, plan) in report.campaigns.enumerated() {
            let y = top + Double(i) * laneHeight
            if i % 2 == 1 {
                svg.append(#"<rect x="0" y="\#(fmt(y))" width="\#(fmt(width))" height="\#(fmt(laneHeight))" fill="\#(Self.laneShade)" fill-opacity="0.7"/>"#)
            }
            svg.append(#"<line x1="0" y1="\#(fmt(y + laneHeight))" x2="\#(fmt(width))" y2="\#(fmt(y + laneHeight))" stroke="\#(Self.grid)"/>"#)
            let bandStart = x(max(plan.startsAt, t0))
            let bandEnd = x(min(max(plan.endsAt, plan.startsAt), t1))
            svg.append(#"<rect x="\#(fmt(bandStart))" y="\#(fmt(y + 28))" width="\#(fmt(max(bandEnd - bandStart, 1)))" height="\#(fmt(laneHeight - 34))" fill="\#(Self.band)" stroke="\#(Self.bandStroke)" stroke-width="0.5"><title>\#(escape("campaign range \(TimeFormatting.iso8601(plan.startsAt)) → \(TimeFormatting.iso8601(plan.endsAt))"))</title></rect>"#)
            var label = "#\(plan.id) \(truncated(plan.name, 60)) — \(plan.status.rawValue) · \(plan.timeZone) · \(TimeFormatting.grouped(plan.recordsPerWindow)) records × \(plan.windows.count) window\(plan.windows.count == 1 ? "" : "s")"
            if plan.lateWindows > 0 { label += " · \(plan.lateWindows) late" }
            if !plan.problems.isEmpty { label += " · \(plan.problems.count) warning\(plan.problems.count == 1 ? "" : "s")" }
            svg.append(#"<text x="\#(fmt(left))" y="\#(fmt(y + 16))" fill="\#(Self.text)" font-weight="600" stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke">\#(escape(label))<title>\#(escape(plan.problems.map(\.message).joined(separator: "\n")))</title></text>"#)

            let pushY = y + 22
            let barY = y + 30
            let barHeight = laneHeight - 38
            let local = ZoneOffsets(identifier: plan.timeZone, from: plan.startsAt, to: plan.endsAt)
            for w in plan.windows {
                let x0 = x(w.startsAt)
                let bw = max(x(w.endsAt) - x0, 1.2)
                let (fill, stroke) = style(w, plan)
                let tip = tooltip(w, plan, zone: local)
                svg.append(#"<rect x="\#(fmt(x0))" y="\#(fmt(barY))" width="\#(fmt(bw))" height="\#(fmt(barHeight))" rx="\#(bw > 6 ? "2" : "0")" fill="\#(fill)"\#(stroke)><title>\#(escape(tip))</title></rect>"#)
                if let pushAt = w.pushAt, let done = w.pushDoneAt, w.records > 0 {
                    let px = x(pushAt)
                    let pw = max(x(done) - px, 2)
                    svg.append(#"<rect x="\#(fmt(px))" y="\#(fmt(pushY))" width="\#(fmt(pw))" height="5" fill="\#(w.lateByMs > 0 ? Self.pushLate : Self.push)"><title>\#(escape(tip))</title></rect>"#)
                }
            }
        }

        // Now line on top of everything.
        if nowVisible {
            let nx = x(report.now)
            svg.append(#"<line x1="\#(fmt(nx))" y1="\#(fmt(top - 30))" x2="\#(fmt(nx))" y2="\#(fmt(plotBottom + 6))" stroke="\#(Self.now)" stroke-width="2"/>"#)
            let anchorEnd = nx > left + plotWidth - 160
            let nowLabel = zone.map { z in
                let wall = z.local(report.now)
                let d = floorDivide(wall, 86_400_000)
                let (_, m, dd) = CivilDate.components(ofDay: d)
                return "now · \(TimeFormatting.weekdayNames[CivilDate.isoWeekday(ofDay: d)]) \(TimeFormatting.monthNames[m]) \(dd) \(TimeFormatting.time(ofDay: wall - d * 86_400_000, precision: .minutes))"
            } ?? "now"
            svg.append(#"<text x="\#(fmt(anchorEnd ? nx - 4 : nx + 4))" y="\#(fmt(plotBottom + 20))" fill="\#(Self.now)" font-weight="600"\#(anchorEnd ? #" text-anchor="end""# : "")>\#(escape(nowLabel))</text>"#)
        }
        svg.append(#"<text x="\#(fmt(width - right))" y="\#(fmt(height - 10))" fill="\#(Self.muted)" text-anchor="end" font-size="11">\#(escape("CallWindow · bars: windows · thin bars: pushes · hover for details"))</text>"#)
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// Time range shown: every window and push interval, padded; `now` included when close.
    private func domain() -> (Int64, Int64, Bool) {
        var low = Int64.max
        var high = Int64.min
        for plan in report.campaigns {
            low = min(low, plan.startsAt)
            high = max(high, plan.endsAt)
            for w in plan.windows {
                low = min(low, w.startsAt, w.pushAt ?? w.startsAt)
                high = max(high, w.endsAt)
            }
        }
        if low >= high {
            if low == Int64.max { low = report.now; high = report.now }
            low -= 3_600_000
            high += 3_600_000
        }
        let span = high - low
        if report.now >= low - span / 10 && report.now <= high + span / 10 {
            low = min(low, report.now)
            high = max(high, report.now)
        }
        let pad = max((high - low) / 50, 60_000)
        let t0 = low - pad
        let t1 = high + pad
        return (t0, t1, report.now >= t0 && report.now <= t1)
    }

    /// Major ticks (instant, label, emphasised) and minor grid lines in local time.
    private func axisTicks(t0: Int64, t1: Int64, zone: ZoneOffsets, plotWidth: Double)
        -> (major: [(Int64, String, Bool)], minor: [Int64])
    {
        let hourMs: Int64 = 3_600_000
        let dayMs: Int64 = 86_400_000
        let span = t1 - t0
        let maxLabels = max(Int64(plotWidth / 95), 4)
        let localStart = zone.local(t0)
        let localEnd = zone.local(t1)
        var major: [(Int64, String, Bool)] = []
        var minor: [Int64] = []

        func day(_ wall: Int64) -> String {
            let d = floorDivide(wall, dayMs)
            let (_, m, dd) = CivilDate.components(ofDay: d)
            return "\(TimeFormatting.weekdayNames[CivilDate.isoWeekday(ofDay: d)]) \(TimeFormatting.monthNames[m]) \(dd)"
        }

        if let step = [15 * 60_000, 30 * 60_000, hourMs, 2 * hourMs, 3 * hourMs, 6 * hourMs, 12 * hourMs]
            .first(where: { span / $0 <= maxLabels })
        {
            // Hours: labels HH:mm, the date in bold at local midnight (and on the first tick).
            var wall = floorDivide(localStart, step) * step + step
            var first = true
            while wall < localEnd {
                let t = zone.instant(local: wall)
                let timeOfDay = floorModulo(wall, dayMs)
                let midnight = timeOfDay == 0
                let label = midnight || first
                    ? "\(day(wall)) \(TimeFormatting.time(ofDay: timeOfDay, precision: .minutes))"
                    : TimeFormatting.time(ofDay: timeOfDay, precision: .minutes)
                major.append((t, label, midnight))
                first = false
                wall += step
            }
            let minorStep = step >= 2 * hourMs ? hourMs : step / 3
            var m = floorDivide(localStart, minorStep) * minorStep + minorStep
            while m < localEnd { minor.append(zone.instant(local: m)); m += minorStep }
            return (major, minor)
        }

        let firstDay = floorDivide(localStart, dayMs) + 1
        let lastDay = floorDivide(localEnd, dayMs)
        let days = span / dayMs
        if days <= maxLabels * 2 {
            // Days: every day or every other day, Mondays emphasised; minor lines every 6 h.
            let every: Int64 = days <= maxLabels ? 1 : 2
            for d in firstDay...max(firstDay, lastDay) where d <= lastDay && (every == 1 || CivilDate.isoWeekday(ofDay: d) % 2 == 1) {
                major.append((zone.instant(local: d * dayMs), day(d * dayMs), CivilDate.isoWeekday(ofDay: d) == 1))
            }
            var m = floorDivide(localStart, 6 * hourMs) * 6 * hourMs + 6 * hourMs
            while m < localEnd { minor.append(zone.instant(local: m)); m += 6 * hourMs }
        } else if days <= maxLabels * 7 * 2 {
            // Weeks: Mondays (every other Monday when long), first of month emphasised; days minor.
            let every = days <= maxLabels * 7 ? 1 : 2
            var k = 0
            if firstDay <= lastDay {
                for d in firstDay...lastDay {
                    minor.append(zone.instant(local: d * dayMs))
                    if CivilDate.isoWeekday(ofDay: d) == 1 {
                        if k % every == 0 { major.append((zone.instant(local: d * dayMs), day(d * dayMs), false)) }
                        k += 1
                    }
                }
            }
        } else {
            // Months (every n months for years), January emphasised; Mondays or months minor.
            let months = days / 30
            let every = [1, 2, 3, 6, 12, 24, 60].first { Int64(months) / Int64($0) <= maxLabels } ?? 120
            var (year, month, _) = CivilDate.components(ofDay: firstDay)
            month += 1
            if month > 12 { month = 1; year += 1 }
            while true {
                let d = CivilDate.day(year: year, month: month, day: 1)
                if d > lastDay { break }
                let t = zone.instant(local: d * dayMs)
                let index = Int(year) * 12 + month - 1
                if index % every == 0 {
                    major.append((t, month == 1 ? "\(year)" : "\(TimeFormatting.monthNames[month]) \(year)", month == 1))
                } else {
                    minor.append(t)
                }
                month += 1
                if month > 12 { month = 1; year += 1 }
            }
        }
        return (major, minor)
    }

    private func style(_ w: WindowPlan, _ plan: CampaignPlan) -> (String, String) {
        switch w.state {
        case .expired: return (Self.expired, "")
        case .cancelled: return ("url(#hatch)", #" stroke="\#(Self.cancelledStroke)" stroke-width="0.5""#)
        case .planned:
            if w.lateByMs > 0 { return (Self.late, #" stroke="\#(Self.lateStroke)" stroke-width="1.5""#) }
            if plan.status == .paused { return (Self.paused, "") }
            return (Self.planned, "")
        }
    }

    private func tooltip(_ w: WindowPlan, _ plan: CampaignPlan, zone: ZoneOffsets?) -> String {
        func local(_ t: Int64) -> String {
            guard let zone else { return TimeFormatting.iso8601(t) }
            return TimeFormatting.dateTime(wall: zone.local(t), precision: .seconds) + TimeFormatting.offset(zone.offset(at: t))
        }
        var text = "\(plan.name) · window \(w.seq) (\(w.state.rawValue))\n\(local(w.startsAt)) → \(local(w.endsAt))\n\(TimeFormatting.grouped(w.records)) records"
        if let pushAt = w.pushAt, let done = w.pushDoneAt {
            text += "\npush \(TimeFormatting.iso8601(pushAt)) → \(TimeFormatting.iso8601(done))"
        }
        text += "\ndeadline \(TimeFormatting.iso8601(w.deadline))"
        if w.lateByMs > 0 { text += "\nLATE by \(TimeFormatting.duration(w.lateByMs))" }
        return text
    }

    private func fmt(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    private func truncated(_ s: String, _ limit: Int) -> String {
        s.count <= limit ? s : String(s.prefix(limit - 1)) + "…"
    }

    /// Escapes text for XML content and attribute values; drops characters XML 1.0 forbids.
    private func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n", "\t": out.unicodeScalars.append(scalar)
            default:
                let v = scalar.value
                if v < 0x20 || (0xFFFE...0xFFFF).contains(v) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
