import Foundation
import Testing
@testable import Planning

@Suite("Campaign windows: properties over random campaigns")
struct WindowPropertyTests {
    static let zones = [
        "UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe",
        "America/St_Johns", "Pacific/Chatham", "America/Santiago", "Europe/London", "Pacific/Kiritimati",
        "America/Los_Angeles", "Australia/Sydney",
    ]

    static func randomCampaign(_ rng: inout SplitMix64, id: Int64, maxDays: Int64 = 120) -> Campaign {
        let start = utc(2020, 1, 1) + Int64.random(in: 0..<(10 * 365 * day), using: &rng)
        // Spans from a few ms to `maxDays`, biased towards the 24 h edges.
        let span: Int64 = switch Int.random(in: 0..<4, using: &rng) {
        case 0: Int64.random(in: 1...(3 * day), using: &rng)
        case 1: day * Int64.random(in: 1...5, using: &rng) + Int64.random(in: -2...2, using: &rng)
        default: Int64.random(in: 1...(maxDays * day), using: &rng)
        }
        var c = campaign(id: id, from: start, to: start + span, zone: zones.randomElement(using: &rng)!)
        if Bool.random(using: &rng) {
            func time() -> LocalTime {
                LocalTime(
                    hour: Int.random(in: 0..<24, using: &rng), minute: [0, 15, 30, 45, 59].randomElement(using: &rng)!,
                    second: Int.random(in: 0..<3, using: &rng) == 0 ? Int.random(in: 0..<60, using: &rng) : 0)
            }
            c.dailyStart = time()
            c.dailyEnd = Int.random(in: 0..<10, using: &rng) == 0 ? LocalTime(hour: 24) : time()
            if Bool.random(using: &rng) {
                c.weekdays = Set((1...7).filter { _ in Bool.random(using: &rng) })
            }
        }
        return c
    }

    @Test func invariantsHoldForThousandsOfCampaigns() throws {
        var rng = SplitMix64(seed: 0xC0FFEE)
        var checked = 0
        for id in 0..<4000 {
            let c = Self.randomCampaign(&rng, id: Int64(id))
            let windows = try c.windows()
            for (k, w) in windows.enumerated() {
                #expect(w.seq == k, "campaign \(id): seq")
                #expect(w.startsAt >= c.startsAt && w.endsAt <= c.endsAt, "campaign \(id): inside the range")
                #expect(w.startsAt < w.endsAt, "campaign \(id): non-empty")
                #expect(w.duration <= day, "campaign \(id): at most 24 h")
                if k > 0 { #expect(windows[k - 1].endsAt <= w.startsAt, "campaign \(id): no overlap") }
            }
            if c.dailyStart == nil {
                let span = c.endsAt - c.startsAt
                #expect(windows.count == Int((span + day - 1) / day), "campaign \(id): minimal count")
                #expect(windows.first?.startsAt == c.startsAt && windows.last?.endsAt == c.endsAt)
                #expect(zip(windows, windows.dropFirst()).allSatisfy { $0.endsAt == $1.startsAt }, "contiguous")
            }
            checked += windows.count
        }
        #expect(checked > 50_000)
    }

    /// Expected daily windows from Foundation's Calendar (which resolves a skipped local time
    /// forward by the gap and a repeated one to its first occurrence), applying the clip/split
    /// steps of the rule by hand.
    static func oracle(_ c: Campaign) -> [[Int64]] {
        guard let start = c.dailyStart, let end = c.dailyEnd, c.startsAt < c.endsAt else { return [] }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: c.timeZone)!
        func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
        func ms(_ d: Date) -> Int64 { Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        func instant(on noon: Date, _ t: LocalTime, plusDays: Int) -> Int64 {
            let shifted = calendar.date(byAdding: .hour, value: 24 * plusDays, to: noon)!
            var parts = calendar.dateComponents([.year, .month, .day], from: shifted)
            if t.hour == 24 {
                let next = calendar.date(byAdding: .hour, value: 24, to: shifted)!
                parts = calendar.dateComponents([.year, .month, .day], from: next)
                parts.hour = 0
            } else {
                parts.hour = t.hour
            }
            parts.minute = t.minute
            parts.second = t.second
            return ms(calendar.date(from: parts)!)
        }
        var noonComponents = calendar.dateComponents([.year, .month, .day], from: date(c.startsAt))
        noonComponents.hour = 12
        var noon = calendar.date(byAdding: .hour, value: -24, to: calendar.date(from: noonComponents)!)!
        var result: [[Int64]] = []
        var previousEnd = Int64.min
        while ms(noon) < c.endsAt + 2 * day {
            defer { noon = calendar.date(byAdding: .hour, value: 24, to: noon)! }
            let weekday = (calendar.component(.weekday, from: noon) + 5) % 7 + 1  // Sunday=1 → ISO 7
            if let weekdays = c.weekdays, !weekdays.contains(weekday) { continue }
            var lower = max(instant(on: noon, start, plusDays: 0), c.startsAt, previousEnd)
            let upper = min(instant(on: noon, end, plusDays: end < start ? 1 : 0), c.endsAt)
            guard lower < upper else { continue }
            while lower < upper {
                let piece = min(lower + day, upper)
                result.append([lower, piece])
                lower = piece
            }
            previousEnd = upper
        }
        return result
    }

    @Test func dailyWindowsAgreeWithFoundationCalendar() throws {
        var rng = SplitMix64(seed: 42)
        var compared = 0
        while compared < 300 {
            var c = Self.randomCampaign(&rng, id: Int64(compared), maxDays: 40)
            guard c.dailyStart != nil else { continue }
            c.dailyStart?.second = 0  // keep the oracle simple
            c.dailyEnd?.second = 0
            #expect(spans(try c.windows()) == Self.oracle(c), "campaign \(c)")
            compared += 1
        }
    }

    @Test func manyDstDaysAgreeWithFoundationCalendar() throws {
        // Every day of 2026 in zones with gaps and overlaps, with hours inside the transitions.
        for zone in ["America/New_York", "Australia/Lord_Howe", "Europe/London", "America/Santiago"] {
            for daily in [("02:30", "05:00"), ("01:30", "03:00"), ("03:00", "02:30"), ("23:30", "01:15"), ("00:00", "24:00")] {
                let c = campaign(from: utc(2026, 1, 1), to: utc(2027, 1, 1), zone: zone, daily: daily)
                #expect(spans(try c.windows()) == Self.oracle(c), "\(zone) \(daily)")
            }
        }
    }

    /// How fast is `callwindow bench planning`'s business; here, the counts of long campaigns.
    @Test func longCampaignsPlanWhole() throws {
        let tenYears = campaign(
            from: utc(2026, 1, 1), to: utc(2036, 1, 1), zone: "America/New_York",
            daily: ("22:00", "06:00"), weekdays: [1, 2, 3, 4, 5])
        // Weekdays among the local dates 2025-12-31 … 2035-12-30 (the last night starts after the end).
        #expect(try tenYears.windows().count == 2608)

        let ninetyDays = campaign(from: utc(2026, 3, 1), to: utc(2026, 5, 30), zone: "Europe/Berlin", daily: ("09:00", "17:00"))
        // 1 March … 29 May 2026: 90 days, one office-hours window each.
        #expect(try ninetyDays.windows().count == 90)
    }
}
