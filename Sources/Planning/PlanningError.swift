/// What went wrong while planning a campaign: a code to match on and a one-sentence
/// `description` that says what is wrong, where, and how to fix it.
///
/// Match on `code` (`error.code == .unknownTimeZone`); `description` is meant for people and
/// may change wording.
public struct PlanningError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; compare against the static members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case unknownTimeZone
            case incompleteDailyHours
            case weekdaysWithoutDailyHours
            case invalidWeekday
            case invalidLocalTime
            case invalidLead
            case rangeTooLong
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// `time_zone` is not an IANA zone this system knows.
        public static let unknownTimeZone = Code(.unknownTimeZone)
        /// Only one of `daily_start` and `daily_end` is set.
        public static let incompleteDailyHours = Code(.incompleteDailyHours)
        /// `weekdays` is set but there are no daily hours to restrict.
        public static let weekdaysWithoutDailyHours = Code(.weekdaysWithoutDailyHours)
        /// A weekday outside 1 (Monday) ... 7 (Sunday).
        public static let invalidWeekday = Code(.invalidWeekday)
        /// A local time outside 00:00:00 ..< 24:00:00.
        public static let invalidLocalTime = Code(.invalidLocalTime)
        /// A negative lead time.
        public static let invalidLead = Code(.invalidLead)
        /// `starts_at`..`ends_at` spans more than 100 years (a typo or an "infinity" timestamp).
        public static let rangeTooLong = Code(.rangeTooLong)

        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// The campaign concerned, when there is one.
    public let campaignID: Int64?
    /// One sentence for people: what, where, how to fix.
    public let message: String

    package init(_ code: Code, campaignID: Int64?, message: String) {
        self.code = code
        self.campaignID = campaignID
        self.message = message
    }

    public var description: String {
        if let campaignID { return "campaign \(campaignID): \(message)" }
        return message
    }

    static func unknownTimeZone(_ zone: String, campaignID: Int64?) -> PlanningError {
        PlanningError(
            .unknownTimeZone, campaignID: campaignID,
            message: "time zone \"\(zone)\" is not known; use an IANA name such as \"Europe/Berlin\" or \"UTC\"")
    }
}
