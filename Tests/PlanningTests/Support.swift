import Foundation
@testable import Planning

/// Deterministic pseudo-random numbers (SplitMix64), so property tests fail reproducibly.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let hour: Int64 = 3_600_000
let minute: Int64 = 60_000
let day: Int64 = 86_400_000

/// Epoch ms of a UTC wall-clock time, computed by Foundation's Calendar (independent of the
/// planner's own civil-date arithmetic).
func utc(_ year: Int, _ month: Int, _ dayOfMonth: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let date = calendar.date(from: DateComponents(
        year: year, month: month, day: dayOfMonth, hour: hour, minute: minute, second: second))!
    return Int64((date.timeIntervalSince1970 * 1000).rounded())
}

let accountA = UUID(uuidString: "0B0A5D2E-1C3F-4E2A-9B1D-6F1E2D3C4B5A")!
let accountB = UUID(uuidString: "7D1E0F3A-2B4C-4D5E-8F60-718293A4B5C6")!
let label = UUID(uuidString: "11111111-2222-3333-4444-555555555555")!

func campaign(
    id: Int64 = 1,
    account: UUID = accountA,
    name: String = "Campaign",
    from startsAt: Int64,
    to endsAt: Int64,
    zone: String = "UTC",
    daily: (String, String)? = nil,
    weekdays: Set<Int>? = nil,
    lead: Int64 = Campaign.defaultLeadMilliseconds,
    priority: Int = 0,
    status: CampaignStatus = .active
) -> Campaign {
    Campaign(
        id: id, clientAccountID: account, name: name, labelID: label,
        startsAt: startsAt, endsAt: endsAt, timeZone: zone,
        dailyStart: daily.flatMap { LocalTime(parsing: $0.0) },
        dailyEnd: daily.flatMap { LocalTime(parsing: $0.1) },
        weekdays: weekdays, leadMilliseconds: lead, priority: priority, status: status)
}

/// Windows as (start, end) pairs, for compact expectations.
func spans(_ windows: [Window]) -> [[Int64]] {
    windows.map { [$0.startsAt, $0.endsAt] }
}
