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

    /// An instant (epoch ms) as `YYYY-MM-DD HH:MM:SSZ`.
    public static func instant(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withFullTime, .withSpaceBetweenDateAndTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
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
