import Foundation
import Planning
import Store

/// A campaign's stored windows as an SVG timeline: one bar per window coloured by state (late
/// ones outlined), filled by the share of its records that are settled, a tick at its push
/// time, a now-line, an axis in UTC and a legend, all in `TimelinePalette`'s colours.
enum DashboardTimeline {
    /// The legend's entries: label and fill, the same colours as the preview's legend.
    static let legend: [(label: String, colour: String)] = [
        ("planned window", TimelinePalette.planned),
        ("late (misses its deadline)", TimelinePalette.late),
        ("expired", TimelinePalette.expired),
        ("cancelled", TimelinePalette.cancelledStroke),
        ("accepted share", TimelinePalette.accepted),
        ("push time", TimelinePalette.push),
        ("now", TimelinePalette.now),
    ]

    static func svg(_ windows: [WindowProgress], now: Int64, width: Double = 1000) -> String {
        let left = 12.0, right = 12.0, barTop = 64.0, barHeight = 34.0
        let height = barTop + barHeight + 40
        var low = windows.map { min($0.startsAt, $0.pushAt) }.min() ?? now - 3_600_000
        var high = windows.map(\.endsAt).max() ?? now + 3_600_000
        let span = max(high - low, 60_000)
        if now >= low - span / 5 && now <= high + span / 5 {
            low = min(low, now)
            high = max(high, now)
        }
        let pad = max((high - low) / 50, 30_000)
        let (t0, t1) = (low - pad, high + pad)
        let plot = width - left - right
        func x(_ t: Int64) -> Double { left + Double(t - t0) / Double(t1 - t0) * plot }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var out: [String] = []
        out.append(#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \#(f(width)) \#(f(height))" role="img" aria-label="timeline of the campaign's windows" font-family="\#(TimelinePalette.font)" font-size="13">"#)
        var lx = left
        for entry in legend {
            out.append(#"<rect x="\#(f(lx))" y="8" width="16" height="12" rx="2" fill="\#(entry.colour)"/>"#)
            out.append(#"<text x="\#(f(lx + 21))" y="18" fill="\#(TimelinePalette.text)">\#(HTMLText.escape(entry.label))</text>"#)
            lx += 34 + Double(entry.label.count) * 7
        }
        for i in 0...4 {
            let t = t0 + (t1 - t0) * Int64(i) / 4
            let tx = x(t)
            out.append(#"<line x1="\#(f(tx))" y1="\#(f(barTop - 8))" x2="\#(f(tx))" y2="\#(f(barTop + barHeight))" stroke="\#(TimelinePalette.grid)"/>"#)
            let anchor = i == 0 ? "start" : i == 4 ? "end" : "middle"
            out.append(#"<text x="\#(f(tx))" y="\#(f(barTop - 14))" fill="\#(TimelinePalette.muted)" text-anchor="\#(anchor)" font-size="12">\#(HTMLText.escape(HTMLText.instant(t).replacingOccurrences(of: ":00Z", with: "Z")))</text>"#)
        }
        for w in windows {
            let x0 = x(w.startsAt)
            let bw = max(x(w.endsAt) - x0, 1.5)
            let fill = switch w.state {
            case .planned, .materialized: w.lateByMs > 0 ? TimelinePalette.late : TimelinePalette.planned
            case .expired: TimelinePalette.expired
            case .cancelled: TimelinePalette.cancelledStroke
            }
            let stroke = w.lateByMs > 0 ? #" stroke="\#(TimelinePalette.lateStroke)" stroke-width="1.5""# : ""
            let tip = "window \(w.windowID): \(HTMLText.instant(w.startsAt)) → \(HTMLText.instant(w.endsAt)) · \(w.state.rawValue) · push \(HTMLText.instant(w.pushAt)) · \(w.accepted)/\(w.records) accepted"
            out.append(#"<rect x="\#(f(x0))" y="\#(f(barTop))" width="\#(f(bw))" height="\#(f(barHeight))" rx="2" fill="\#(fill)" fill-opacity="0.55"\#(stroke)><title>\#(HTMLText.escape(tip))</title></rect>"#)
            if w.records > 0 {
                let share = Double(w.accepted) / Double(w.records)
                out.append(#"<rect x="\#(f(x0))" y="\#(f(barTop + barHeight - 10))" width="\#(f(bw * share))" height="10" fill="\#(TimelinePalette.accepted)"/>"#)
            }
            out.append(#"<rect x="\#(f(x(w.pushAt) - 1))" y="\#(f(barTop - 6))" width="2" height="6" fill="\#(w.lateByMs > 0 ? TimelinePalette.pushLate : TimelinePalette.push)"/>"#)
        }
        if now >= t0 && now <= t1 {
            let nx = x(now)
            out.append(#"<line x1="\#(f(nx))" y1="\#(f(barTop - 24))" x2="\#(f(nx))" y2="\#(f(barTop + barHeight + 8))" stroke="\#(TimelinePalette.now)" stroke-width="2"/>"#)
            let anchor = nx > width - 160 ? "end" : "start"
            out.append(#"<text x="\#(f(anchor == "end" ? nx - 4 : nx + 4))" y="\#(f(barTop + barHeight + 24))" fill="\#(TimelinePalette.now)" font-weight="600" text-anchor="\#(anchor)">now · \#(HTMLText.escape(HTMLText.instant(now)))</text>"#)
        }
        out.append("</svg>")
        return out.joined(separator: "\n")
    }
}
