import Foundation
import Logging
import Planning
import Postgres
import Scheduler
import Store
import TestSupport
import Testing

/// 2026-12-01T00:00:00Z in epoch ms.
let december: Int64 = 1_796_083_200_000
let minute: Int64 = 60_000
let hour: Int64 = 3_600_000

struct PlannerFixture {
    let connection: PostgresConnection
    let client = UUID()
    let label = UUID()
    let planner: Planner

    static func make(tokens: Int = 1) async throws -> PlannerFixture {
        let connection = try await TestDatabase.connect()
        try await TestDatabase.migrate(connection)
        let planner = Planner(options: PlannerOptions(capacity: Capacity(tokens: tokens)),
                              deliveries: DeliveryStore(instance: "planner-test", transport: .v1),
                              logger: Logger(label: "test"))
        let fixture = PlannerFixture(connection: connection, planner: planner)
        try await CampaignSeed.label(client: fixture.client, label: fixture.label, on: connection)
        // The audit partitions of the test's months (the daemon's queue maintainer creates them
        // ahead; planning does not), so no test depends on another having run first.
        _ = try await planner.deliveries.ensureAuditPartitions(now: december, monthsAhead: 2, on: connection)
        return fixture
    }

    /// A campaign of three daily 09:00–17:00 UTC windows from December 1, lead 10 minutes, two callers.
    func campaign(receivers: Int = 100) async throws -> Int64 {
        var seed = CampaignSeed(client: client, label: label, startsAt: december, endsAt: december + 3 * 24 * hour)
        seed.name = "daily"
        (seed.dailyStart, seed.dailyEnd) = ("09:00", "17:00")
        seed.callers = ["4930000001", "4930000002"]
        seed.receivers = receivers
        return try await seed.insert(on: connection)
    }

    func windows(_ campaign: Int64) async throws -> [(state: String, records: Int, pushAt: Int64, deadline: Int64)] {
        try await connection.query(
            "SELECT state, records, callwindow.ms_of(push_at) AS p, callwindow.ms_of(deadline) AS d FROM callwindow.windows WHERE campaign_id = $1 ORDER BY starts_at",
            campaign).map { (try $0.decode("state"), try $0.decode("records"), try $0.decode("p"), try $0.decode("d")) }
    }
}

@Suite("The planner against a real database", .timeLimit(.minutes(3)))
struct PlannerTests {
    @Test("windows are planned as late as possible and materialised only within the horizon")
    func justInTime() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign()
            let first = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december, on: fixture.connection)
            #expect(first.windowsPlanned == 3)
            #expect(first.materialised == 0)
            var windows = try await fixture.windows(campaign)
            #expect(windows.map(\.state) == ["planned", "planned", "planned"])
            // 200 records at 80 records/s take 2.5 s: pushed as late as possible before 08:50.
            #expect(windows[0].deadline == december + 9 * hour - 10 * minute)
            #expect(windows[0].pushAt == windows[0].deadline - 2_500)

            // Two hours before the first push, its window is materialised; the others are not yet.
            let second = try await fixture.planner.cycle(clientAccountID: fixture.client, now: windows[0].pushAt - 2 * hour, on: fixture.connection)
            #expect(second.materialised == 1)
            #expect(second.recordsCreated == 200)
            windows = try await fixture.windows(campaign)
            #expect(windows.map(\.state) == ["materialized", "planned", "planned"])
            #expect(windows[0].records == 200)
            // Planning again is idempotent.
            let third = try await fixture.planner.cycle(clientAccountID: fixture.client, now: windows[0].pushAt - 2 * hour + 1_000, on: fixture.connection)
            #expect(third.recordsCreated == 0)
            #expect(try await fixture.windows(campaign).map(\.records) == [200, 0, 0])
        }
    }

    @Test("receivers added later are pushed for live windows; removed ones are cancelled")
    func changingSets() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 10)
            let now = december + 8 * hour
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now, on: fixture.connection)
            #expect(try await fixture.windows(campaign)[0].records == 20)
            try await fixture.connection.execute("INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '4917700000001')", campaign)
            try await fixture.connection.execute("DELETE FROM callwindow.campaign_receivers WHERE campaign_id = $1 AND phone = '4915100000001'", campaign)
            let cycle = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now + 1_000, on: fixture.connection)
            #expect(cycle.recordsCreated == 2)
            #expect(cycle.recordsCancelled == 2)
            let pending = try await fixture.connection.query(
                "SELECT count(*) AS n FROM callwindow.deliveries WHERE campaign_id = $1 AND state = 'pending'", campaign)[0].decode("n", as: Int.self)
            #expect(pending == 20)
        }
    }

    @Test("a label that turns static holds the campaign, visibly, until it is fixed")
    func heldByLabel() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 5)
            try await fixture.connection.execute("UPDATE callwindow.labels SET label_type = 'static' WHERE client_account_id = $1", fixture.client)
            let now = december + 8 * hour
            let held = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now, on: fixture.connection)
            #expect(held.materialised == 0)
            let problems = try await fixture.connection.query("SELECT problems FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
                .decode("problems", as: [String].self)
            #expect(problems.contains { $0.contains("static label") })
            try await fixture.connection.execute("UPDATE callwindow.labels SET label_type = 'dynamic' WHERE client_account_id = $1", fixture.client)
            let fixed = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now + 1_000, on: fixture.connection)
            #expect(fixed.materialised == 1)
            let cleared = try await fixture.connection.query("SELECT problems FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
                .decode("problems", as: [String].self)
            #expect(cleared.isEmpty)
        }
    }

    @Test("cancelling a campaign cancels its pending records and windows; pausing holds them")
    func cancel() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 5)
            let now = december + 8 * hour
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now, on: fixture.connection)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", campaign)
            let paused = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now + 1, on: fixture.connection)
            #expect(paused.recordsCancelled == 0)
            let claimable = try await fixture.planner.deliveries.claim(clientAccountID: fixture.client, owner: "t", now: december + 9 * hour, limit: 100, leaseMs: 1_000, on: fixture.connection)
            #expect(claimable.isEmpty)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'cancelled' WHERE id = $1", campaign)
            let cancelled = try await fixture.planner.cycle(clientAccountID: fixture.client, now: now + 2, on: fixture.connection)
            #expect(cancelled.recordsCancelled == 10)
            #expect(try await fixture.windows(campaign).map(\.state) == ["cancelled", "cancelled", "cancelled"])
        }
    }
}

@Suite("The leader", .timeLimit(.minutes(2)))
struct LeaderTests {
    @Test("an INSERT wakes the planner through NOTIFY: with a 10-minute poll on a clock that never moves, the window is materialised")
    func wakesOnInsert() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            // The clock never moves in this test and the poll interval is 10 minutes: only the
            // campaign tables' NOTIFY can wake the planner. How fast it wakes is `bench pipeline`'s
            // `materialised_ms`, not this test's business.
            let clock = ManualClock(start: SystemClock().now())
            let service = Leader(configuration: try TestDatabase.configuration(), clients: [fixture.client],
                                 planner: fixture.planner, clock: clock, pollInterval: .seconds(600), logger: Logger(label: "test"))
            try await withServices([service], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(30), "the first planning cycle") { service.lastCycleAt > 0 }
                // The planner now waits for a notification or for the poll, 10 minutes away on the clock.
                try await clock.waitForSleepers(1, "the planner to wait for a change")
                // A campaign whose only window is due now: starts in 2 minutes, lead 1 minute.
                let startMillis = clock.now() + 120_000
                var seed = CampaignSeed(client: fixture.client, label: fixture.label, startsAt: startMillis, endsAt: startMillis + 3_600_000)
                seed.name = "now"
                seed.lead = "1 minute"
                let id = try await seed.insert(on: fixture.connection)
                try await waitUntil(timeout: .seconds(60), "the window's delivery to be materialised after the INSERT's NOTIFY") {
                    try await fixture.connection.query("SELECT count(*) AS n FROM callwindow.deliveries WHERE campaign_id = $1", id)[0]
                        .decode("n", as: Int.self) == 1
                }
                #expect(clock.now() == startMillis - 120_000, "the clock never moved: the poll cannot have done it")
            }
        }
    }

    @Test("setClients: an account removed is given up at once (its lock released for another instance); one added is asked for at once")
    func accountsChange() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            // The clock never moves: nothing here waits for the 10 s heartbeat's next lead attempt.
            let clock = ManualClock(start: SystemClock().now())
            let other = UUID()
            let service = Leader(configuration: try TestDatabase.configuration(), clients: [fixture.client, other],
                                 planner: fixture.planner, clock: clock, pollInterval: .seconds(600), logger: Logger(label: "test"))
            func held(_ client: UUID) async throws -> Bool {
                try await fixture.connection.query(
                    """
                    SELECT count(*) AS n FROM pg_locks
                    WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = $1
                    """, Leader.leadershipKey(client))[0].decode("n", as: Int.self) == 1
            }
            try await withServices([service], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(30), "the leader to lead both accounts") {
                    let first = try await held(fixture.client)
                    let second = try await held(other)
                    return first && second
                }
                service.setClients([other])
                #expect(service.clients == [other])
                try await waitUntil(timeout: .seconds(30), "the removed account's lock to be released") { try await !held(fixture.client) }
                #expect(try await held(other), "the account kept is still led")
                service.setClients([other, fixture.client])
                try await waitUntil(timeout: .seconds(30), "the account added back to be led again") { try await held(fixture.client) }
            }
        }
    }
}
