import Foundation
import Logging
import Planning
import Postgres
import Scheduler
import Store
import TestSupport
import Testing

@Suite("The queue's upkeep schedule")
struct MaintenanceScheduleTests {
    @Test("every task is due at once, then each on its own interval")
    func ownIntervals() {
        var schedule = MaintenanceSchedule()
        #expect(schedule.nextDue == .min)
        #expect(schedule.takeDue(now: 0) == MaintenanceTask.allCases)
        #expect(schedule.takeDue(now: 0) == [], "taken once")
        #expect(schedule.nextDue == 5_000)
        #expect(schedule.takeDue(now: 4_999) == [])
        #expect(schedule.takeDue(now: 5_000) == [.expireWindows, .expireRecords, .rescueLeases])
        #expect(schedule.takeDue(now: 59_999) == [.expireWindows, .expireRecords, .rescueLeases])
        #expect(schedule.takeDue(now: 60_000) == [.cleanUp])
        #expect(schedule.takeDue(now: 3_600_000) == [.auditPartitions, .expireWindows, .expireRecords, .rescueLeases, .cleanUp])
    }

    @Test("a late look runs a task once, not once per interval missed")
    func noCatchUpStorm() {
        var intervals = MaintenanceIntervals()
        intervals.rescueMs = 1_000
        var schedule = MaintenanceSchedule(intervals: intervals)
        _ = schedule.takeDue(now: 0)
        #expect(schedule.takeDue(now: 10_500).filter { $0 == .rescueLeases }.count == 1)
        #expect(schedule.nextDue == 11_500)
    }
}

@Suite("The queue maintainer and the leader", .timeLimit(.minutes(2)))
struct QueueMaintainerTests {
    @Test("the leader rescues a lapsed lease on the rescue interval, with no change to plan and a 10-minute poll")
    func rescueOnItsOwnInterval() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 5)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            // An instance claims the ten records with a one-second lease, then dies.
            let claimedAt = december + 9 * hour - 10 * minute
            let claimed = try await fixture.planner.deliveries.claim(
                clientAccountID: fixture.client, owner: "dead", now: claimedAt, limit: 100, leaseMs: 1_000, on: fixture.connection)
            #expect(claimed.count == 10)
            let clock = ManualClock(start: claimedAt)
            let leader = Leader(configuration: try TestDatabase.configuration(), clients: [fixture.client], planner: fixture.planner,
                                clock: clock, pollInterval: .seconds(600), logger: Logger(label: "test"))
            let pending = {
                try await fixture.connection.query(
                    "SELECT count(*) AS n FROM callwindow.deliveries WHERE campaign_id = $1 AND state = 'pending'", campaign)[0].decode("n", as: Int.self)
            }
            try await withServices([leader], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(30), "the leader's first cycle") { leader.lastCycleAt > 0 }
                try await clock.waitForSleepers(1, "the leader to wait for its next task")
                #expect(try await pending() == 0, "the lease was still valid at the first look")
                // The next upkeep is 5 s away; the poll, 10 minutes.
                try await clock.advance(by: 5_000, whenSleepers: 1, "the leader to wait for the rescue interval")
                // Planning rescues nothing (other tests' campaigns may wake it through the shared
                // channel): the rescue can only come from the upkeep schedule.
                try await waitUntil(timeout: .seconds(30), "the lapsed leases to be rescued") { try await pending() == 10 }
            }
        }
    }

    @Test("performAll expires ended records and windows, rescues, cleans up and creates partitions")
    func performAll() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 5)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            let maintainer = QueueMaintainer(deliveries: fixture.planner.deliveries)
            // After the three windows ended: the first one's ten records expire unpushed, the two
            // windows never materialised expire, and the expired records are then cleaned up.
            let after = december + 3 * 24 * hour
            let report = try await maintainer.performAll(clientAccountID: fixture.client, now: after, on: fixture.connection)
            #expect(report.recordsExpired == 10)
            #expect(report.windowsExpired == 2)
            #expect(report.leasesRescued == 0)
            #expect(report.deliveriesCleaned == 10)
            #expect(try await fixture.windows(campaign).map(\.state) == ["materialized", "expired", "expired"])
            let audited = try await fixture.connection.query(
                "SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'expired'", campaign)[0].decode("n", as: Int.self)
            #expect(audited == 10, "every expired record keeps its audit row after the clean-up")
        }
    }

    /// `records = pending + in_flight + accepted + rejected + expired + cancelled + suppressed` for `campaign`.
    static func identity(_ campaign: Int64, on connection: PostgresConnection) async throws -> (records: Int, parts: Int) {
        let row = try await connection.query(
            """
            SELECT records, pending + in_flight + accepted + rejected + expired + cancelled + suppressed AS parts
            FROM callwindow.campaign_progress WHERE campaign_id = $1
            """, campaign)[0]
        return (try row.decode("records"), try row.decode("parts"))
    }

    @Test("windows a paused campaign never materialised count their records as expired when they end, with a trail")
    func unmaterialisedWindowsExpireCounted() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 3)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", campaign)
            var sums = try await Self.identity(campaign, on: fixture.connection)
            #expect(sums.records == 6 && sums.parts == 6, "the first window's six records are pending; the planned ones not yet counted")
            let report = try await QueueMaintainer(deliveries: fixture.planner.deliveries)
                .performAll(clientAccountID: fixture.client, now: december + 3 * 24 * hour, on: fixture.connection)
            #expect(report.windowsExpired == 2)
            sums = try await Self.identity(campaign, on: fixture.connection)
            #expect(sums.records == 18)
            #expect(sums.parts == 18)
            let trail = try await fixture.connection.query(
                "SELECT outcome, records FROM callwindow.window_outcomes WHERE campaign_id = $1 ORDER BY starts_at", campaign)
                .map { "\(try $0.decode("outcome", as: String.self)) \(try $0.decode("records", as: Int.self))" }
            #expect(trail == ["expired 6", "expired 6"])
        }
    }

    @Test("cancelling a campaign counts the records of its unmaterialised windows as cancelled, with a trail")
    func cancelledPlannedWindowsCounted() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 3)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'cancelled' WHERE id = $1", campaign)
            let cycle = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour + 1_000, on: fixture.connection)
            #expect(cycle.recordsCancelled == 6, "the materialised window's pending records")
            let sums = try await Self.identity(campaign, on: fixture.connection)
            #expect(sums.records == 18 && sums.parts == 18)
            let cancelled = try await fixture.connection.query("SELECT cancelled FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
                .decode("cancelled", as: Int.self)
            #expect(cancelled == 18)
            let trail = try await fixture.connection.query(
                "SELECT count(*) AS n, sum(records)::int8 AS r FROM callwindow.window_outcomes WHERE campaign_id = $1 AND outcome = 'cancelled'", campaign)[0]
            #expect(try trail.decode("n", as: Int.self) == 2)
            #expect(try trail.decode("r", as: Int.self) == 12)
        }
    }
}
