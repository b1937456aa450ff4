import Foundation
import Testing
@testable import Planning

@Suite("Campaign windows: hand-worked cases")
struct WindowTests {
    @Test func exactly24HoursIsOneWindow() throws {
        let start = utc(2026, 1, 1, 13, 17)
        let windows = try campaign(from: start, to: start + day).windows()
        #expect(windows == [Window(seq: 0, startsAt: start, endsAt: start + day)])
    }

    @Test func twentyFourHoursAndOneMillisecondIsTwoWindows() throws {
        let start = utc(2026, 1, 1, 13, 17)
        let windows = try campaign(from: start, to: start + day + 1).windows()
        #expect(windows == [
            Window(seq: 0, startsAt: start, endsAt: start + day),
            Window(seq: 1, startsAt: start + day, endsAt: start + day + 1),
        ])
    }

    @Test func ninetyDaysWithoutDailyHours() throws {
        let start = utc(2026, 3, 1, 6, 45)
        // The zone must not matter without daily hours, DST change included.
        let windows = try campaign(from: start, to: start + 90 * day, zone: "America/New_York").windows()
        #expect(windows.count == 90)
        #expect(windows.enumerated().allSatisfy { k, w in
            w.seq == k && w.startsAt == start + Int64(k) * day && w.endsAt == start + Int64(k + 1) * day
        })
    }

    @Test func emptyOrReversedRangeHasNoWindows() throws {
        let start = utc(2026, 1, 1)
        #expect(try campaign(from: start, to: start).windows().isEmpty)
        #expect(try campaign(from: start, to: start - 1).windows().isEmpty)
        #expect(try campaign(from: start, to: start, daily: ("09:00", "17:00")).windows().isEmpty)
    }

    @Test func overnightHoursCrossMidnightAndAreClipped() throws {
        // Berlin in winter is UTC+1. Campaign: Jan 5 00:00 to Jan 8 00:00 local.
        let c = campaign(
            from: utc(2026, 1, 4, 23), to: utc(2026, 1, 7, 23),
            zone: "Europe/Berlin", daily: ("22:00", "06:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 1, 4, 23), utc(2026, 1, 5, 5)],  // Jan 4's night, already under way: clipped
            [utc(2026, 1, 5, 21), utc(2026, 1, 6, 5)],
            [utc(2026, 1, 6, 21), utc(2026, 1, 7, 5)],
            [utc(2026, 1, 7, 21), utc(2026, 1, 7, 23)],  // Jan 7's night, cut by the campaign end
        ])
        #expect(try c.windows().map(\.seq) == [0, 1, 2, 3])
    }

    @Test func campaignStartingMidWindowKeepsTheWindowUnderWay() throws {
        // Starts Jan 5 03:00 Berlin, inside the night window that began Jan 4 22:00.
        let c = campaign(
            from: utc(2026, 1, 5, 2), to: utc(2026, 1, 6, 12),
            zone: "Europe/Berlin", daily: ("22:00", "06:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 1, 5, 2), utc(2026, 1, 5, 5)],
            [utc(2026, 1, 5, 21), utc(2026, 1, 6, 5)],
        ])
        // Starting inside day hours likewise.
        let d = campaign(from: utc(2026, 1, 5, 12), to: utc(2026, 1, 6, 12), daily: ("09:00", "17:00"))
        #expect(spans(try d.windows()) == [
            [utc(2026, 1, 5, 12), utc(2026, 1, 5, 17)],
            [utc(2026, 1, 6, 9), utc(2026, 1, 6, 12)],
        ])
    }

    @Test func weekdaysOnly() throws {
        // 2026-03-02 is a Monday; two weeks, Monday to Friday, 09:00-17:00 UTC.
        let c = campaign(
            from: utc(2026, 3, 2), to: utc(2026, 3, 16), daily: ("09:00", "17:00"), weekdays: [1, 2, 3, 4, 5])
        let expected = [2, 3, 4, 5, 6, 9, 10, 11, 12, 13].map { [utc(2026, 3, $0, 9), utc(2026, 3, $0, 17)] }
        #expect(spans(try c.windows()) == expected)
    }

    @Test func weekdaysPickTheDayAnOvernightWindowStarts() throws {
        // Friday only (5), 22:00-06:00: the window runs Friday night into Saturday.
        let c = campaign(from: utc(2026, 3, 2), to: utc(2026, 3, 16), daily: ("22:00", "06:00"), weekdays: [5])
        #expect(spans(try c.windows()) == [
            [utc(2026, 3, 6, 22), utc(2026, 3, 7, 6)],
            [utc(2026, 3, 13, 22), utc(2026, 3, 14, 6)],
        ])
    }

    @Test func newYorkSpringForwardGapUsesTheOffsetBeforeIt() throws {
        // 2026-03-08 02:00 EST → 03:00 EDT. 02:30 does not exist: it becomes 07:30 UTC (03:30 EDT).
        let c = campaign(
            from: utc(2026, 3, 7, 5), to: utc(2026, 3, 10, 4),
            zone: "America/New_York", daily: ("02:30", "05:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 7, 10)],  // EST
            [utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 9)],  // gap start, EDT end: 1 h 30 min
            [utc(2026, 3, 9, 6, 30), utc(2026, 3, 9, 9)],  // EDT
        ])
    }

    @Test func newYorkFallBackOverlapUsesTheFirstOccurrence() throws {
        // 2026-11-01 02:00 EDT → 01:00 EST. 01:30 happens twice: the first (EDT, 05:30 UTC) counts.
        let c = campaign(
            from: utc(2026, 10, 31, 4), to: utc(2026, 11, 3, 5),
            zone: "America/New_York", daily: ("01:30", "03:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 10, 31, 5, 30), utc(2026, 10, 31, 7)],
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8)],  // 2 h 30 min long
            [utc(2026, 11, 2, 6, 30), utc(2026, 11, 2, 8)],
        ])
    }

    @Test func windowOver24HoursAcrossFallBackIsSplit() throws {
        // 03:00-02:30 is 23 h 30 min of local time; across the fall-back night it lasts 24 h 30 min.
        let c = campaign(
            from: utc(2026, 10, 31, 7), to: utc(2026, 11, 1, 12),
            zone: "America/New_York", daily: ("03:00", "02:30"))
        let windows = try c.windows()
        #expect(spans(windows) == [
            [utc(2026, 10, 31, 7), utc(2026, 11, 1, 7)],
            [utc(2026, 11, 1, 7), utc(2026, 11, 1, 7, 30)],
            [utc(2026, 11, 1, 8), utc(2026, 11, 1, 12)],
        ])
        #expect(windows.map(\.seq) == [0, 1, 2])
    }

    @Test func endInsideAGapNeverMakesWindowsOverlap() throws {
        // 03:10-02:30 overnight: Mar 7's window ends at Mar 8 02:30 (gap → 07:30 UTC) while
        // Mar 8's starts at 03:10 EDT = 07:10 UTC; the later window starts where the earlier ends.
        let c = campaign(
            from: utc(2026, 3, 7, 8, 10), to: utc(2026, 3, 9, 7),
            zone: "America/New_York", daily: ("03:10", "02:30"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 3, 7, 8, 10), utc(2026, 3, 8, 7, 30)],
            [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)],
        ])
    }

    @Test func kolkataHalfHourOffset() throws {
        // IST is UTC+05:30 all year.
        let c = campaign(
            from: utc(2026, 5, 31, 18, 30), to: utc(2026, 6, 2, 18, 30),
            zone: "Asia/Kolkata", daily: ("09:00", "18:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 6, 1, 3, 30), utc(2026, 6, 1, 12, 30)],
            [utc(2026, 6, 2, 3, 30), utc(2026, 6, 2, 12, 30)],
        ])
    }

    @Test func lordHoweThirtyMinuteSpringForward() throws {
        // 2026-10-04 02:00 (+10:30) → 02:30 (+11:00). 02:10 is in the gap: +10:30 → 15:40 UTC.
        let c = campaign(
            from: utc(2026, 10, 2, 13, 30), to: utc(2026, 10, 5, 13),
            zone: "Australia/Lord_Howe", daily: ("02:10", "03:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 10, 2, 15, 40), utc(2026, 10, 2, 16, 30)],
            [utc(2026, 10, 3, 15, 40), utc(2026, 10, 3, 16)],  // 20 min
            [utc(2026, 10, 4, 15, 10), utc(2026, 10, 4, 16)],
        ])
    }

    @Test func lordHoweThirtyMinuteFallBack() throws {
        // 2026-04-05 02:00 (+11:00) → 01:30 (+10:30). 01:45 happens twice: the first (+11) counts.
        let c = campaign(
            from: utc(2026, 4, 4, 13), to: utc(2026, 4, 5, 13, 30),
            zone: "Australia/Lord_Howe", daily: ("01:45", "03:00"))
        #expect(spans(try c.windows()) == [[utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 16, 30)]])
    }

    @Test func endOfDayAs24Hundred() throws {
        let c = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 3), daily: ("18:00", "24:00"))
        #expect(spans(try c.windows()) == [
            [utc(2026, 1, 1, 18), utc(2026, 1, 2)],
            [utc(2026, 1, 2, 18), utc(2026, 1, 3)],
        ])
    }

    @Test func equalDailyStartAndEndGiveNoWindows() throws {
        let c = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 3), daily: ("09:00", "09:00"))
        #expect(try c.windows().isEmpty)
    }

    @Test func windowStates() throws {
        let c = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 3))
        let windows = try c.windows()
        let now = utc(2026, 1, 2)  // exactly the end of window 0
        #expect(windows.map { c.windowState($0, now: now) } == [.expired, .planned])
        var cancelled = c
        cancelled.status = .cancelled
        #expect(windows.map { cancelled.windowState($0, now: now) } == [.cancelled, .cancelled])
        #expect(c.deadline(of: windows[1]) == utc(2026, 1, 2) - 5 * minute)
    }
}

@Suite("Campaign windows: errors and local times")
struct WindowErrorTests {
    @Test func unknownTimeZoneNamesTheZoneAndCampaign() {
        let c = campaign(id: 12, from: utc(2026, 1, 1), to: utc(2026, 1, 2), zone: "Mars/Base")
        #expect {
            try c.windows()
        } throws: { error in
            guard let error = error as? PlanningError else { return false }
            return error.code == .unknownTimeZone
                && error.description.hasPrefix("campaign 12: time zone \"Mars/Base\" is not known")
        }
    }

    @Test func onlyOneDailyBoundIsAnError() {
        var c = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 2))
        c.dailyStart = LocalTime(hour: 9)
        #expect(throws: PlanningError.self) { try c.windows() }
        do {
            _ = try c.windows()
        } catch {
            #expect(error.code == .incompleteDailyHours)
        }
    }

    @Test func badWeekdaysAreErrors() {
        let bad = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 9), daily: ("09:00", "17:00"), weekdays: [0, 3])
        #expect(throws: PlanningError.self) { try bad.windows() }
        let noHours = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 9), weekdays: [1])
        #expect(throws: PlanningError.self) { try noHours.windows() }
        do {
            _ = try noHours.windows()
        } catch {
            #expect(error.code == .weekdaysWithoutDailyHours)
        }
    }

    @Test func parsesPostgresTimeText() {
        #expect(LocalTime(parsing: "09:30") == LocalTime(hour: 9, minute: 30))
        #expect(LocalTime(parsing: "23:59:59") == LocalTime(hour: 23, minute: 59, second: 59))
        #expect(LocalTime(parsing: "07:05:03.25") == LocalTime(hour: 7, minute: 5, second: 3, microsecond: 250_000))
        #expect(LocalTime(parsing: "07:05:03.000001")?.microsecondsSinceMidnight == 25_503_000_001)
        #expect(LocalTime(parsing: "24:00:00")?.secondsSinceMidnight == 86_400)
        for bad in ["", "9:30", "24:00:01", "12:60", "12:00:60", "12:00:00.1234567", "12:00:00.", "aa:bb", "12:00:00:00", "+1:00"] {
            #expect(LocalTime(parsing: bad) == nil, "\(bad) should not parse")
        }
        #expect(LocalTime(hour: 7, minute: 5, second: 3, microsecond: 250_000).description == "07:05:03.250000")
        #expect(LocalTime(hour: 7).description == "07:00")
        #expect(LocalTime(hour: 25).isValid == false)
    }

    @Test func absurdRangesAreErrorsNotHangs() {
        let infinite = campaign(from: Int64.min, to: Int64.max)
        #expect(throws: PlanningError.self) { try infinite.windows() }
        let century = campaign(from: utc(2026, 1, 1), to: utc(2126, 2, 1))
        #expect(throws: PlanningError.self) { try century.windows() }
        do {
            _ = try century.windows()
        } catch {
            #expect(error.code == .rangeTooLong)
        }
    }

    @Test func invalidLocalTimeIsAnError() {
        var c = campaign(from: utc(2026, 1, 1), to: utc(2026, 1, 2), daily: ("09:00", "17:00"))
        c.dailyEnd = LocalTime(hour: 17, minute: 75)
        #expect(throws: PlanningError.self) { try c.windows() }
    }
}
