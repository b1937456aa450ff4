import Planning
import Testing

@Suite struct CalibratedClockTests {
    @Test func theReadingWithTheShortestRoundTripWinsAndItsMidpointIsAssumed() {
        let samples = [
            CalibratedClock.Sample(before: 1_000, reference: 21_100, after: 1_300),  // 300 ms round trip
            CalibratedClock.Sample(before: 2_000, reference: 22_010, after: 2_020),  // 20 ms: offset 22,010 − 2,010
            CalibratedClock.Sample(before: 3_000, reference: 23_500, after: 3_900),
        ]
        #expect(CalibratedClock.offset(of: samples) == 20_000)
        #expect(CalibratedClock.offset(of: []) == nil)
    }

    @Test func aCalibratedClockReadsTheReferenceAndSleepsOnTheRawClock() async throws {
        // The host's clock is 20 s behind the database's.
        let raw = ManualClock(start: 1_000_000)
        let clock = CalibratedClock(raw: raw)
        #expect(clock.now() == 1_000_000, "offset 0 before the first calibration")
        #expect(clock.calibrate([CalibratedClock.Sample(before: 1_000_000, reference: 1_020_004, after: 1_000_008)]) == 20_000)
        #expect(clock.now() == 1_020_000)
        #expect(clock.calibrate([]) == 20_000, "no reading keeps the offset")
        // A sleep until the reference's 1,020,500 is a sleep until the raw 1,000,500.
        async let slept: Void = clock.sleep(until: 1_020_500)
        while raw.sleeperCount == 0 { await Task.yield() }
        raw.advance(by: 499)
        #expect(raw.sleeperCount == 1)
        raw.advance(by: 1)
        try await slept
        #expect(clock.now() == 1_020_500)
    }
}
