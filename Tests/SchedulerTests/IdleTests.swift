import CallRecordAPI
import Foundation
import Ledger
import Logging
import Planning
import Postgres
import Scheduler
import Store
import TestSupport
import Testing
import TokenPool

@Suite("An idle account costs the database next to nothing: its dispatcher sleeps until work is due or a NOTIFY wakes it",
       .timeLimit(.minutes(3)))
struct IdleTests {
    @Test("an idle simulated hour costs a handful of queue reads, and a campaign's insert wakes the dispatcher at once")
    func idleDispatcherSleepsUntilNotified() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let clock = ManualClock(start: december)
            let logger = Logger(label: "test")
            try await closing(try await TestDatabase.pool(maxConnections: 4)) { database throws in
                // Nothing is due, so the API is never called.
                try await APIClient.withClient(options: .init(baseURL: "http://127.0.0.1:9", connectTimeoutMs: 1_000, requestTimeoutMs: 1_000)) { api in
                    let tokens = try TokenPool(
                        configuration: .init(clientAccountID: fixture.client, key: APIKey(keyID: UUID(), apiKey: "unused"), transport: .v1, instance: "idle"),
                        ledger: MemoryTokenLedger(), api: api, clock: clock)
                    let wakes = DueWakes(accounts: [fixture.client])
                    let dispatcher = Dispatcher(clientAccountID: fixture.client, database: database, tokens: tokens,
                                                store: fixture.planner.deliveries, owner: "idle", wake: wakes.signal(for: fixture.client),
                                                clock: clock, logger: logger)
                    // Upkeep every 30 minutes: the simulated hour then takes a few hundred steps, not thousands.
                    var intervals = MaintenanceIntervals()
                    (intervals.expiryMs, intervals.rescueMs, intervals.cleanUpMs) = (1_800_000, 1_800_000, 1_800_000)
                    let leader = Leader(configuration: try TestDatabase.configuration(), clients: [fixture.client], planner: fixture.planner,
                                        intervals: intervals, clock: clock, wakes: wakes, logger: logger)
                    try await withServices([leader, dispatcher], logger: logger) {
                        try await waitUntil(timeout: .seconds(30), "the leader's first round") { leader.lastCycleAt > 0 }
                        let before = dispatcher.counts.queueReads
                        try await withSimulatedTime(on: clock, busy: { database.connectionsInUse > 0 || tokens.isBusy }, "an idle hour") {
                            while clock.now() < december + 3_600_000 { try await Task.sleep(for: .milliseconds(2)) }
                        }
                        // A 100 ms poll made 36,000; the fallback (10 min) makes six.
                        let idle = dispatcher.counts.queueReads - before
                        #expect(idle <= 8, "\(idle) queue reads in an idle hour")

                        // A campaign inserted now: the leader plans it on its NOTIFY and wakes the
                        // dispatcher, while the clock stands still.
                        let reads = dispatcher.counts.queueReads
                        var seed = CampaignSeed(client: fixture.client, label: fixture.label, startsAt: clock.now() + 60_000,
                                                endsAt: clock.now() + 3_600_000)
                        seed.name = "due soon"
                        seed.receivers = 5
                        _ = try await seed.insert(on: fixture.connection)
                        try await waitUntil(timeout: .seconds(30), "the dispatcher woken by the planner's NOTIFY") {
                            dispatcher.counts.queueReads > reads
                        }
                        #expect(clock.now() < december + 3_600_000 + 10_000)
                    }
                }
            }
        }
    }
}
