public import Foundation

/// A time of day without a date or zone, as PostgreSQL's `time` type holds it
/// (microsecond precision; `24:00:00` is allowed and means the end of the day).
public struct LocalTime: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// 0 ... 24 (24 only as `24:00:00`).
    public var hour: Int
    /// 0 ... 59.
    public var minute: Int
    /// 0 ... 59.
    public var second: Int
    /// 0 ..< 1_000_000.
    public var microsecond: Int

    /// A time of day; check `isValid` for data from outside (`Campaign.windows()` does).
    public init(hour: Int, minute: Int = 0, second: Int = 0, microsecond: Int = 0) {
        self.hour = hour
        self.minute = minute
        self.second = second
        self.microsecond = microsecond
    }

    /// Parses PostgreSQL `time` text: `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` with 1 to 6 fraction
    /// digits. Returns nil for anything else, including out-of-range fields.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        func number(_ s: Substring, digits: ClosedRange<Int>) -> Int? {
            guard digits.contains(s.count), s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(s)
        }
        guard let hour = number(Substring(parts[0]), digits: 2...2),
              let minute = number(Substring(parts[1]), digits: 2...2)
        else { return nil }
        var second = 0
        var microsecond = 0
        if parts.count == 3 {
            let secondParts = parts[2].split(separator: ".", omittingEmptySubsequences: false)
            guard secondParts.count <= 2, let s = number(Substring(secondParts[0]), digits: 2...2) else { return nil }
            second = s
            if secondParts.count == 2 {
                let fraction = Substring(secondParts[1])
                guard let f = number(fraction, digits: 1...6) else { return nil }
                microsecond = f * [1, 100_000, 10_000, 1_000, 100, 10, 1][fraction.count]
            }
        }
        self.init(hour: hour, minute: minute, second: second, microsecond: microsecond)
        guard isValid else { return nil }
    }

    /// Whether the fields form a time between 00:00:00 and 24:00:00 inclusive.
    public var isValid: Bool {
        guard (0...59).contains(minute), (0...59).contains(second), (0..<1_000_000).contains(microsecond) else {
            return false
        }
        if hour == 24 { return minute == 0 && second == 0 && microsecond == 0 }
        return (0..<24).contains(hour)
    }

    /// Microseconds since midnight (86 400 000 000 for `24:00:00`).
    public var microsecondsSinceMidnight: Int64 {
        (Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)) * 1_000_000 + Int64(microsecond)
    }

    /// Milliseconds since midnight; sub-millisecond digits are dropped (instants are whole ms).
    public var millisecondsSinceMidnight: Int64 {
        microsecondsSinceMidnight / 1000
    }

    /// Whole seconds since midnight.
    public var secondsSinceMidnight: Int {
        hour * 3600 + minute * 60 + second
    }

    public static func < (lhs: LocalTime, rhs: LocalTime) -> Bool {
        lhs.microsecondsSinceMidnight < rhs.microsecondsSinceMidnight
    }

    /// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.ffffff`, whichever is the shortest exact form.
    public var description: String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var text = "\(two(hour)):\(two(minute))"
        if second != 0 || microsecond != 0 { text += ":\(two(second))" }
        if microsecond != 0 {
            let digits = String(microsecond)
            text += "." + String(repeating: "0", count: 6 - digits.count) + digits
        }
        return text
    }
}

/// Whether a campaign is being pushed.
public enum CampaignStatus: String, Sendable, Codable, CaseIterable {
    /// Windows are planned and pushed.
    case active
    /// Nothing is pushed until the campaign is active again.
    case paused
    /// Nothing is pushed any more; its windows are `cancelled`.
    case cancelled
}

/// A campaign row as the planner needs it: what to show, over which period, at which hours.
public struct Campaign: Sendable, Hashable {
    /// Default lead time: a window's records should all be pushed 5 minutes before it starts.
    public static let defaultLeadMilliseconds: Int64 = 5 * 60 * 1000

    /// Primary key of the campaign row.
    public var id: Int64
    /// The Truecaller client account the campaign belongs to (its token pool and rate limits).
    public var clientAccountID: UUID
    /// A name for people.
    public var name: String
    /// The dynamic label shown to receivers.
    public var labelID: UUID
    /// Overrides the label's name (at most 40 characters); per-record overrides beat it.
    public var labelName: String?
    /// The call reason (10 to 100 characters); per-record overrides beat it.
    public var callReason: String?
    /// First instant of the campaign (epoch ms, inclusive).
    public var startsAt: Int64
    /// End of the campaign (epoch ms, exclusive).
    public var endsAt: Int64
    /// IANA zone of the daily hours and of local dates; default `"UTC"`.
    public var timeZone: String
    /// Start of the daily hours in `timeZone`; nil (with `dailyEnd`) for round-the-clock.
    public var dailyStart: LocalTime?
    /// End of the daily hours; earlier than `dailyStart` means the window crosses midnight.
    public var dailyEnd: LocalTime?
    /// ISO weekdays (Monday = 1 ... Sunday = 7) on which a daily window *starts*; nil = every day.
    public var weekdays: Set<Int>?
    /// How long before a window starts all its records should have been pushed (default 5 min).
    public var leadMilliseconds: Int64
    /// Higher goes first when deadlines are equal.
    public var priority: Int
    /// Whether the campaign is being pushed.
    public var status: CampaignStatus

    /// A campaign; defaults as in the schema.
    public init(
        id: Int64,
        clientAccountID: UUID,
        name: String,
        labelID: UUID,
        labelName: String? = nil,
        callReason: String? = nil,
        startsAt: Int64,
        endsAt: Int64,
        timeZone: String = "UTC",
        dailyStart: LocalTime? = nil,
        dailyEnd: LocalTime? = nil,
        weekdays: Set<Int>? = nil,
        leadMilliseconds: Int64 = Campaign.defaultLeadMilliseconds,
        priority: Int = 0,
        status: CampaignStatus = .active
    ) {
        self.id = id
        self.clientAccountID = clientAccountID
        self.name = name
        self.labelID = labelID
        self.labelName = labelName
        self.callReason = callReason
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.timeZone = timeZone
        self.dailyStart = dailyStart
        self.dailyEnd = dailyEnd
        self.weekdays = weekdays
        self.leadMilliseconds = leadMilliseconds
        self.priority = priority
        self.status = status
    }
}
