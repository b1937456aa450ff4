/// Small, allocation-light formatting of instants and durations for reports (no DateFormatter:
/// the output must not depend on the machine's locale, and long tables format many instants).
enum TimeFormatting {
    private static func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
    private static func three(_ n: Int64) -> String { n < 10 ? "00\(n)" : n < 100 ? "0\(n)" : "\(n)" }

    /// Which fields an instant needs to be shown exactly.
    enum Precision: Int, Comparable, Sendable {
        case minutes, seconds, milliseconds
        static func < (a: Precision, b: Precision) -> Bool { a.rawValue < b.rawValue }

        /// The finest precision `instant` (ms since a local or UTC midnight) needs.
        static func needed(for instant: Int64) -> Precision {
            if floorModulo(instant, 1000) != 0 { return .milliseconds }
            if floorModulo(instant, 60_000) != 0 { return .seconds }
            return .minutes
        }
    }

    /// `yyyy-MM-dd` of a day number.
    static func date(day: Int64) -> String {
        let (y, m, d) = CivilDate.components(ofDay: day)
        return "\(y)-\(two(Int64(m)))-\(two(Int64(d)))"
    }

    /// `HH:mm`, `HH:mm:ss` or `HH:mm:ss.SSS` of milliseconds since midnight.
    static func time(ofDay ms: Int64, precision: Precision) -> String {
        let h = ms / 3_600_000
        let m = ms / 60_000 % 60
        var text = "\(two(h)):\(two(m))"
        if precision >= .seconds { text += ":\(two(ms / 1000 % 60))" }
        if precision >= .milliseconds { text += ".\(three(ms % 1000))" }
        return text
    }

    /// `yyyy-MM-dd HH:mm[:ss[.SSS]]` of a wall-clock value (ms since 1970-01-01T00:00 of some zone).
    static func dateTime(wall: Int64, precision: Precision) -> String {
        let day = floorDivide(wall, 86_400_000)
        return date(day: day) + " " + time(ofDay: wall - day * 86_400_000, precision: precision)
    }

    /// `yyyy-MM-ddTHH:mm:ss[.SSS]Z`.
    static func iso8601(_ instant: Int64) -> String {
        let precision: Precision = floorModulo(instant, 1000) == 0 ? .seconds : .milliseconds
        return dateTime(wall: instant, precision: precision).replacingFirstSpace(with: "T") + "Z"
    }

    /// `+05:30`, `-04:00`.
    static func offset(_ ms: Int64) -> String {
        let minutes = abs(ms) / 60_000
        return (ms < 0 ? "-" : "+") + two(minutes / 60) + ":" + two(minutes % 60)
    }

    /// A short human duration: `850 ms`, `12.5 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`.
    static func duration(_ ms: Int64) -> String {
        let ms = max(0, ms)
        if ms < 1000 { return "\(ms) ms" }
        if ms < 60_000 {
            let tenths = (ms + 50) / 100
            return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
        }
        let seconds = ms / 1000
        if seconds < 3600 { return seconds % 60 == 0 ? "\(seconds / 60) min" : "\(seconds / 60) min \(seconds % 60) s" }
        let minutes = seconds / 60
        if minutes < 1440 { return minutes % 60 == 0 ? "\(minutes / 60) h" : "\(minutes / 60) h \(minutes % 60) min" }
        let hours = minutes / 60
        return hours % 24 == 0 ? "\(hours / 24) d" : "\(hours / 24) d \(hours % 24) h"
    }

    /// `1,234,567`.
    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// ISO weekday names, Monday = 1.
    static let weekdayNames = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    static let monthNames = ["", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}

extension String {
    fileprivate func replacingFirstSpace(with replacement: String) -> String {
        guard let index = firstIndex(of: " ") else { return self }
        return self[..<index] + replacement + self[self.index(after: index)...]
    }
}
