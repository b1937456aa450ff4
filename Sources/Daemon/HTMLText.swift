import Foundation

/// Text made safe for HTML: the only way the dashboard puts a value into a page.
public enum HTMLText {
    /// `text` with `&`, `<`, `>`, `"` and `'` replaced by entities, safe in element content and
    /// in quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// `text` percent-encoded for a URL query value.
    public static func query(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// An instant (epoch ms) as `YYYY-MM-DD HH:MM:SSZ` in UTC, milliseconds dropped (rounded
    /// down, also before 1970). Plain integer arithmetic: a page formats hundreds of instants,
    /// and a Foundation `ISO8601DateFormatter` made for each cost about 0.25 ms apiece on Linux
    /// (50 ms of a 30-window campaign page in a release build).
    public static func instant(_ ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000)
        let days = seconds >= 0 ? seconds / 86_400 : -((-seconds + 86_399) / 86_400)
        let second = seconds - days * 86_400
        // Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let yearText = year >= 0 && year < 10_000 ? String(repeating: "0", count: 4 - String(year).count) + String(year) : String(year)
        return "\(yearText)-\(two(month))-\(two(day)) \(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60))Z"
    }

    /// A signed duration (ms) in its largest units: `in 4 min`, `12 s ago`, `now`.
    public static func relative(_ ms: Int64) -> String {
        let magnitude = abs(ms) / 1000
        if magnitude == 0 { return "now" }
        let text = magnitude < 60 ? "\(magnitude) s" : magnitude < 3_600 ? "\(magnitude / 60) min"
            : magnitude < 172_800 ? "\(magnitude / 3_600) h \(magnitude % 3_600 / 60) min" : "\(magnitude / 86_400) days"
        return ms > 0 ? "in \(text)" : "\(text) ago"
    }
}
