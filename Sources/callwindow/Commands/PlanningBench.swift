import ArgumentParser
import Foundation
import Planning

/// `callwindow bench planning`: how long the pure planner takes to cut long campaigns into
/// windows (the figure the window tests used to assert; a test checks behaviour, not speed).
struct PlanningBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planning",
        abstract: "Measure how long the planner takes to cut long campaigns into windows (median of runs).",
        discussion: "Pure computation: no database, no API. Campaigns: 10 years of weekday nights in America/New_York, 90 days of office hours in Europe/Berlin, 10 years round the clock."
    )

    @Option(help: "Runs per campaign (the median is reported).")
    var runs: Int = 20

    @Flag(help: "Print one JSON object on the last line.")
    var json = false

    func run() async throws {
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        let cases: [(name: String, campaign: Campaign)] = [
            ("ten_years_weekday_nights", Self.campaign(from: "2026-01-01T00:00:00Z", to: "2036-01-01T00:00:00Z", zone: "America/New_York",
                                                       daily: ("22:00", "06:00"), weekdays: [1, 2, 3, 4, 5])),
            ("ninety_days_office_hours", Self.campaign(from: "2026-03-01T00:00:00Z", to: "2026-05-30T00:00:00Z", zone: "Europe/Berlin",
                                                       daily: ("09:00", "17:00"), weekdays: nil)),
            ("ten_years_round_the_clock", Self.campaign(from: "2026-01-01T00:00:00Z", to: "2036-01-01T00:00:00Z", zone: "UTC",
                                                        daily: nil, weekdays: nil)),
        ]
        let clock = ContinuousClock()
        var report: [String] = []
        for (name, campaign) in cases {
            var timings: [Double] = []
            var windows = 0
            for _ in 0..<runs {
                let started = clock.now
                windows = try campaign.windows().count
                timings.append((clock.now - started).seconds * 1000)
            }
            timings.sort()
            let median = timings[timings.count / 2]
            print(String(format: "%@: %d windows, median %.3f ms (min %.3f, max %.3f) over %d runs",
                         name, windows, median, timings.first ?? 0, timings.last ?? 0, runs))
            report.append(String(format: #""%@_ms": %.3f, "%@_windows": %d"#, name, median, name, windows))
        }
        if json { print("{" + report.joined(separator: ", ") + "}") }
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
