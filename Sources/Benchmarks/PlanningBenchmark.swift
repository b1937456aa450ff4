import Foundation
import Planning

/// `callwindow bench planning`: how long the pure planner takes to cut long campaigns into
/// windows (the figure the window tests used to assert; a test checks behaviour, not speed).
/// Pure computation: no database, no API.
public enum PlanningBenchmark {
    /// One campaign's figures.
    public struct Timing: Sendable {
        /// `ten_years_weekday_nights`, `ninety_days_office_hours` or `ten_years_round_the_clock`.
        public let name: String
        /// Windows the campaign becomes.
        public let windows: Int
        /// Milliseconds of each run, sorted.
        public let runsMs: [Double]
        /// The median run.
        public var medianMs: Double { runsMs[runsMs.count / 2] }
    }

    /// Plans each benchmark campaign `runs` times.
    public static func run(runs: Int) throws -> [Timing] {
        let cases: [(name: String, campaign: Campaign)] = [
            ("ten_years_weekday_nights", campaign(from: "2026-01-01T00:00:00Z", to: "2036-01-01T00:00:00Z", zone: "America/New_York",
                                                  daily: ("22:00", "06:00"), weekdays: [1, 2, 3, 4, 5])),
            ("ninety_days_office_hours", campaign(from: "2026-03-01T00:00:00Z", to: "2026-05-30T00:00:00Z", zone: "Europe/Berlin",
                                                  daily: ("09:00", "17:00"), weekdays: nil)),
            ("ten_years_round_the_clock", campaign(from: "2026-01-01T00:00:00Z", to: "2036-01-01T00:00:00Z", zone: "UTC",
                                                   daily: nil, weekdays: nil)),
        ]
        let clock = ContinuousClock()
        return try cases.map { name, campaign in
            var timings: [Double] = []
            var windows = 0
            for _ in 0..<max(1, runs) {
                let started = clock.now
                windows = try campaign.windows().count
                timings.append((clock.now - started).seconds * 1000)
            }
            return Timing(name: name, windows: windows, runsMs: timings.sorted())
        }
    }

    private static func campaign(from: String, to: String, zone: String, daily: (String, String)?, weekdays: Set<Int>?) -> Campaign {
        let parse = { (text: String) -> Int64 in
            Int64(((ISO8601DateFormatter().date(from: text) ?? Date(timeIntervalSince1970: 0)).timeIntervalSince1970 * 1000).rounded())
        }
        return Campaign(
            id: 1, clientAccountID: UUID(), name: "bench", labelID: UUID(), startsAt: parse(from), endsAt: parse(to), timeZone: zone,
            dailyStart: daily.flatMap { LocalTime(parsing: $0.0) }, dailyEnd: daily.flatMap { LocalTime(parsing: $0.1) }, weekdays: weekdays)
    }
}
