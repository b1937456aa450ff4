@testable import Daemon
import Foundation
import Logging
import Planning
import Postgres
import Prometheus
import Store
import Synchronization
import TestSupport
import Testing

@Suite("The alerting gauges (OperationsSampler), against a real database", .timeLimit(.minutes(3)))
struct OperationsSamplerTests {
    /// The value of the gauge line `name` exactly (name plus labels) in `registry`'s text, if any.
    static func value(_ registry: PrometheusCollectorRegistry, _ name: String) -> String? {
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test("callwindow_ready follows /readyz's check; mints in the shared window, the budget and the due records come from the database")
    func gauges() async throws {
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            try await closing(try await TestDatabase.pool(maxConnections: 2)) { pool in
                let clock = ManualClock(start: readAt)
                let lastCycle = Mutex(readAt)
                let registry = PrometheusCollectorRegistry()
                let readiness = Readiness(database: pool, plannerLastCycleAt: { lastCycle.withLock { $0 } }, staleAfterMs: 60_000,
                                          now: { clock.now() })
                let sampler = OperationsSampler(
                    registry: registry, database: pool, accounts: [fixture.client], readiness: readiness, mintBudget: 7,
                    mintWindowMs: 1_800_000, clock: clock, logger: Logger(label: "test.sampler"))
                let client = #"{client="\#(fixture.client.uuidString.lowercased())"}"#

                // At readAt: the fixture's one mint is a minute old, its materialised records are all final.
                await sampler.sample()
                #expect(Self.value(registry, "callwindow_ready") == "1.0")
                #expect(Self.value(registry, "callwindow_token_mints_window" + client) == "1.0")
                #expect(Self.value(registry, "callwindow_token_mint_budget" + client) == "7.0")
                #expect(Self.value(registry, "callwindow_queue_due" + client) == "0.0")

                // The second windows materialised: their records count as due only once their push time has come.
                var second: [Int64] = []
                for campaign in [fixture.evil, fixture.plain] {
                    let window = fixture.windows[campaign]![1]
                    _ = try await fixture.store.materialize(windowID: window, now: readAt, on: connection)
                    second.append(window)
                }
                let materialised = try await connection.query(
                    "SELECT count(*) AS n FROM callwindow.deliveries WHERE window_id = ANY($1) AND state = 'pending'", second
                )[0].decode("n", as: Int.self)
                #expect(materialised == 5)
                await sampler.sample()
                #expect(Self.value(registry, "callwindow_queue_due" + client) == "0.0")

                // A day later the push time has come; the mint left the window; the planner's last cycle is a day old.
                clock.set(to: december + 25 * hour + 60_000)
                await sampler.sample()
                #expect(Self.value(registry, "callwindow_queue_due" + client) == "\(Double(materialised))")
                #expect(Self.value(registry, "callwindow_token_mints_window" + client) == "0.0")
                #expect(Self.value(registry, "callwindow_ready") == "0.0")
                #expect(await readiness.problems() == ["the planner has not reached the database recently"])
                lastCycle.withLock { $0 = clock.now() }
                await sampler.sample()
                #expect(Self.value(registry, "callwindow_ready") == "1.0")
            }
        }
    }
}
