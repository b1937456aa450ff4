import Foundation

/// The UTC offsets of one IANA zone over a bounded period, as a sorted table of transitions,
/// so that converting between local times and instants is a binary search instead of a call
/// into Foundation for every day of a long campaign.
///
/// Local time → instant follows one rule for both kinds of transition: *use the UTC offset in
/// force just before the transition*. A local time inside a gap (spring forward) therefore lands
/// after the gap (New York 02:30 on the spring-forward day is 07:30 UTC, i.e. 03:30 EDT), and an
/// ambiguous local time (fall back) is its first occurrence.
struct ZoneOffsets: Sendable {
    static let millisecondsPerDay: Int64 = 86_400_000

    /// The IANA name the table was built from.
    let identifier: String
    /// Instants (epoch ms) at which `offsets[i + 1]` takes over; sorted ascending.
    private let transitions: [Int64]
    /// Offsets from UTC in milliseconds; `offsets[0]` applies before `transitions[0]`.
    private let offsets: [Int64]

    /// Builds the table for `identifier` covering at least `[from, to]` (epoch ms), padded by a
    /// few days on each side. Returns nil when the zone is not known.
    init?(identifier: String, from: Int64, to: Int64) {
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        self.identifier = identifier
        let padding = 3 * Self.millisecondsPerDay
        let lower = Self.date(from: from - padding)
        let upper = Self.date(from: to + padding)
        var transitions: [Int64] = []
        var offsets: [Int64] = [Int64(zone.secondsFromGMT(for: lower)) * 1000]
        var cursor = lower
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next < upper, next > cursor {
            let instant = Int64((next.timeIntervalSince1970 * 1000).rounded())
            let offset = Int64(zone.secondsFromGMT(for: next)) * 1000
            if offset != offsets[offsets.count - 1] {
                transitions.append(instant)
                offsets.append(offset)
            }
            cursor = next
        }
        self.transitions = transitions
        self.offsets = offsets
    }

    private static func date(from milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// Offset from UTC (ms) in force at `instant` (epoch ms).
    func offset(at instant: Int64) -> Int64 {
        // Index of the first transition after `instant` = number of transitions at or before it.
        var low = 0
        var high = transitions.count
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= instant { low = middle + 1 } else { high = middle }
        }
        return offsets[low]
    }

    /// The local wall-clock time of `instant`, as milliseconds since 1970-01-01T00:00 local.
    func local(_ instant: Int64) -> Int64 {
        instant + offset(at: instant)
    }

    /// The local date (days since 1970-01-01) of `instant`.
    func localDay(_ instant: Int64) -> Int64 {
        floorDivide(local(instant), Self.millisecondsPerDay)
    }

    /// The instant of a local wall-clock time (milliseconds since 1970-01-01T00:00 local),
    /// using the offset in force just before a transition for gaps and overlaps alike.
    func instant(local: Int64) -> Int64 {
        // Offsets never exceed ±18 h, so the offset 18 h earlier is the one "before" any
        // transition that could concern this local time (transitions are months apart).
        let before = offset(at: local - 18 * 3_600_000)
        let candidate = local - before
        let actual = offset(at: candidate)
        if actual == before { return candidate }  // unique, or the first of two occurrences
        let later = local - actual
        if offset(at: later) == actual { return later }  // unique, after a transition
        return candidate  // inside a gap: keep the offset from before it
    }
}

/// Floor division (rounds towards negative infinity).
func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// Non-negative remainder matching `floorDivide`.
func floorModulo(_ a: Int64, _ b: Int64) -> Int64 {
    a - floorDivide(a, b) * b
}

/// Civil date arithmetic on days since 1970-01-01 (Howard Hinnant's algorithms).
enum CivilDate {
    /// ISO weekday (Monday = 1 ... Sunday = 7) of a day number; 1970-01-01 was a Thursday.
    static func isoWeekday(ofDay day: Int64) -> Int {
        Int(floorModulo(day + 3, 7)) + 1
    }

    /// (year, month 1...12, day 1...31) of a day number.
    static func components(ofDay day: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = day + 719_468
        let era = floorDivide(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), Int(m), Int(d))
    }

    /// Day number of a civil date.
    static func day(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
