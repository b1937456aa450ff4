import Foundation
import Testing
@testable import Planning

@Suite("Capacity")
struct CapacityTests {
    @Test func ratesPerTransport() {
        #expect(Capacity(tokens: 1, transport: .v1).recordsPerSecond == 80)
        #expect(Capacity(tokens: 3, transport: .v2).recordsPerSecond == 240)
        #expect(Capacity(tokens: 1, transport: .batch).recordsPerSecond == 400)  // 60/min × 500 × 0.8
        #expect(Capacity(tokens: 2, transport: .v1, utilisation: 1).recordsPerSecond == 200)
        #expect(Capacity(tokens: 1, transport: .v1, realTimeRequestsPerSecond: 10).recordsPerSecond == 8)
        #expect(Capacity(tokens: 0).recordsPerSecond == 0)
    }

    @Test func durationsRoundUpToTheMillisecond() {
        let pool = Capacity(tokens: 1)  // 80 records/s
        #expect(pool.pushDuration(records: 0) == 0)
        #expect(pool.pushDuration(records: 1) == 13)  // 12.5 ms
        #expect(pool.pushDuration(records: 80) == 1000)
        #expect(Capacity(tokens: 3).pushDuration(records: 240) == 1000)  // no float noise
        #expect(Capacity(tokens: 0).pushDuration(records: 1) > 50 * 365 * day)
    }
}

@Suite("Push schedule (ALAP, earliest deadline first)")
struct PushScheduleTests {
    let now = utc(2026, 1, 1)
    let pool = Capacity(tokens: 1)  // 80 records/s: 8000 records take 100 s

    func demand(_ campaignID: Int64, _ seq: Int = 0, records: Int, deadline: Int64, priority: Int = 0) -> PushDemand {
        PushDemand(
            key: WindowKey(campaignID: campaignID, seq: seq), records: records, deadline: deadline,
            startsAt: deadline + 5 * minute, endsAt: deadline + 5 * minute + hour, priority: priority)
    }

    @Test func singleFeasibleWindowEndsExactlyAtItsDeadline() {
        let deadline = now + hour
        let slots = PushSchedule.plan([demand(1, records: 8000, deadline: deadline)], capacity: pool, now: now)
        #expect(slots == [PushSlot(key: WindowKey(campaignID: 1, seq: 0), pushAt: deadline - 100_000, pushDoneAt: deadline, deadline: deadline, lateByMs: 0)])
    }

    @Test func equalDeadlinesHigherPriorityIsPushedEarlier() {
        let deadline = now + hour
        let slots = PushSchedule.plan([
            demand(1, records: 8000, deadline: deadline, priority: 0),
            demand(2, records: 8000, deadline: deadline, priority: 5),
        ], capacity: pool, now: now)
        #expect(slots[1].pushAt == deadline - 200_000 && slots[1].pushDoneAt == deadline - 100_000)
        #expect(slots[0].pushAt == deadline - 100_000 && slots[0].pushDoneAt == deadline)
    }

    @Test func earlierDeadlineIsPushedBeforeAndBlocksStack() {
        // Window 2's deadline is only 50 s after window 1's: window 1 must finish 50 s early.
        let slots = PushSchedule.plan([
            demand(1, 0, records: 8000, deadline: now + hour),
            demand(1, 1, records: 8000, deadline: now + hour + 50_000),
        ], capacity: pool, now: now)
        #expect(slots[1].pushAt == now + hour - 50_000)
        #expect(slots[0].pushDoneAt == now + hour - 50_000)
        #expect(slots[0].pushAt == now + hour - 150_000)
        #expect(slots.allSatisfy { $0.lateByMs == 0 })
    }

    @Test func infeasibleWindowStartsNowAndReportsLateness() {
        let deadline = now + 50_000  // needs 100 s, has 50 s
        let slots = PushSchedule.plan([
            demand(1, 0, records: 8000, deadline: deadline),
            demand(1, 1, records: 800, deadline: now + 120_000),  // pushed right after: late by 0
            demand(1, 2, records: 8000, deadline: now + 150_000),  // 110 s + 100 s = late by 60 s
        ], capacity: pool, now: now)
        #expect(slots[0].pushAt == now && slots[0].pushDoneAt == now + 100_000 && slots[0].lateByMs == 50_000)
        #expect(slots[1].pushAt == now + 100_000 && slots[1].pushDoneAt == now + 110_000 && slots[1].lateByMs == 0)
        #expect(slots[2].pushAt == now + 110_000 && slots[2].lateByMs == 60_000)
        #expect(slots[0].isLate && !slots[1].isLate)
    }

    @Test func windowWhoseDeadlinePassedButNotEndedIsPushedNow() {
        let slots = PushSchedule.plan([demand(1, records: 80, deadline: now - 10 * minute)], capacity: pool, now: now)
        #expect(slots[0].pushAt == now && slots[0].pushDoneAt == now + 1000)
        #expect(slots[0].lateByMs == 10 * minute + 1000)
        #expect(!slots[0].isExpired)
    }

    @Test func expiredAndZeroRecordDemands() {
        var expired = demand(1, 0, records: 500, deadline: now - 2 * hour)
        expired.endsAt = now  // ended exactly now
        let empty = demand(1, 1, records: 0, deadline: now + 2 * hour)
        let slots = PushSchedule.plan([expired, empty, demand(1, 2, records: 8000, deadline: now + hour)], capacity: pool, now: now)
        #expect(slots[0].isExpired && slots[0].pushAt == slots[0].pushDoneAt && slots[0].lateByMs == 0)
        #expect(slots[1].pushAt == now + 2 * hour && slots[1].pushDoneAt == now + 2 * hour && !slots[1].isExpired)
        #expect(slots[1].lateByMs == 0)
        #expect(slots[2].pushDoneAt == now + hour)  // the empty window takes no capacity
    }

    @Test func tokensNeeded() {
        // 100 windows of 24 000 records, deadlines 100 s apart starting 100 s from now:
        // each needs 240 records/s = 3 tokens at 80/s.
        let demands = (0..<100).map { demand(1, $0, records: 24_000, deadline: now + Int64($0 + 1) * 100_000) }
        #expect(PushSchedule.tokensNeeded(for: demands, capacity: pool, now: now) == 3)
        #expect(PushSchedule.plan(demands, capacity: pool.with(tokens: 3), now: now).allSatisfy { $0.lateByMs == 0 })
        #expect(PushSchedule.plan(demands, capacity: pool.with(tokens: 2), now: now).contains { $0.lateByMs > 0 })
        #expect(PushSchedule.tokensNeeded(for: demands, capacity: Capacity(tokens: 1, transport: .batch), now: now) == 1)
        #expect(PushSchedule.tokensNeeded(for: [demand(1, records: 5, deadline: now - 1)], capacity: pool, now: now) == nil)
        #expect(PushSchedule.tokensNeeded(for: [demand(1, records: 0, deadline: now + 1)], capacity: pool, now: now) == 0)
        #expect(PushSchedule.tokensNeeded(for: demands, capacity: pool, now: now, limit: 2) == nil)
    }

    @Test func randomSchedulesKeepEveryInvariant() {
        var rng = SplitMix64(seed: 7)
        for round in 0..<400 {
            let now = utc(2026, 1, 1) + Int64.random(in: 0..<day, using: &rng)
            let capacity = Capacity(
                tokens: Int.random(in: 1...20, using: &rng), transport: Transport.allCases.randomElement(using: &rng)!)
            let count = Int.random(in: 1...300, using: &rng)
            let demands: [PushDemand] = (0..<count).map { k in
                let startsAt = now + Int64.random(in: (-2 * hour)...(3 * day), using: &rng)
                let lead = Int64.random(in: 0...(10 * minute), using: &rng)
                return PushDemand(
                    key: WindowKey(campaignID: Int64.random(in: 1...5, using: &rng), seq: k),
                    records: Int.random(in: 0..<8, using: &rng) == 0 ? 0 : Int.random(in: 1...3_000_000, using: &rng),
                    deadline: startsAt - lead, startsAt: startsAt,
                    endsAt: startsAt + Int64.random(in: 1...day, using: &rng),
                    priority: Int.random(in: 0...2, using: &rng))
            }
            let slots = PushSchedule.plan(demands, capacity: capacity, now: now)
            #expect(slots.count == demands.count)
            let rate = capacity.recordsPerSecond
            var live: [(PushDemand, PushSlot)] = []
            for (d, s) in zip(demands, slots) {
                #expect(s.key == d.key && s.deadline == d.deadline)
                if d.endsAt <= now {
                    #expect(s.isExpired, "round \(round): expired")
                    continue
                }
                #expect(!s.isExpired)
                #expect(s.pushAt >= now, "round \(round): nothing before now")
                // No span of time carries more than R records/s (up to float rounding).
                #expect(Double(s.pushDoneAt - s.pushAt) >= Double(d.records) * 1000 / rate - 1e-6)
                #expect(s.pushDoneAt - s.pushAt == capacity.pushDuration(records: d.records))
                #expect(s.lateByMs == max(0, s.pushDoneAt - d.deadline) || d.records == 0)
                if d.records > 0 { live.append((d, s)) }
            }
            let inTime = live.sorted { $0.1.pushAt < $1.1.pushAt }
            for (a, b) in zip(inTime, inTime.dropFirst()) {
                #expect(a.1.pushDoneAt <= b.1.pushAt, "round \(round): intervals overlap")
            }
            // Lateness is what EDF from now gives: max lateness = max_k(now + Σ_{i≤k} dᵢ − deadline_k).
            var finish = now
            var expectedMaxLate: Int64 = 0
            for (d, _) in live.sorted(by: { $0.0.deadline < $1.0.deadline }) {
                finish += capacity.pushDuration(records: d.records)
                expectedMaxLate = max(expectedMaxLate, finish - d.deadline)
            }
            #expect(live.map(\.1.lateByMs).max() ?? 0 == expectedMaxLate, "round \(round): lateness consistent with R")
            if expectedMaxLate == 0 {
                // Feasible: every deadline met, and each interval as late as possible: it ends at its
                // deadline or where the next interval begins.
                for (k, (d, s)) in inTime.enumerated() {
                    #expect(s.pushDoneAt <= d.deadline)
                    let tight = s.pushDoneAt == d.deadline || (k + 1 < inTime.count && inTime[k + 1].1.pushAt == s.pushDoneAt)
                    #expect(tight, "round \(round): not as late as possible")
                }
                let needed = PushSchedule.tokensNeeded(for: demands, capacity: capacity, now: now)
                #expect(needed != nil && needed! <= capacity.tokens)
            }
        }
    }
}
