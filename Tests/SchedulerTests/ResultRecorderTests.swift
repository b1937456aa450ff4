import Foundation
import Logging
import Planning
import Postgres
import Scheduler
import Store
import TestSupport
import Testing

@Suite("The result recorder at shutdown", .timeLimit(.minutes(2)))
struct ResultRecorderTests {
    /// Claims the records of a 2-receiver campaign and returns them as accepted results.
    static func acceptedResults(_ fixture: PlannerFixture) async throws -> [DeliveryResult] {
        _ = try await fixture.campaign(receivers: 2)
        _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
        let at = december + 9 * hour - 10 * minute
        let claimed = try await fixture.planner.deliveries.claim(clientAccountID: fixture.client, owner: "recorder-test", now: at,
                                                                  limit: 100, leaseMs: 60_000, on: fixture.connection)
        let attempt = DeliveryResult.Attempt(at: at, tokenFingerprint: "abcdef012345", httpStatus: 200, latencyMs: 4, outcome: .accepted)
        return claimed.map { DeliveryResult(delivery: $0, next: .accepted, outcome: .accepted, attempts: [attempt]) }
    }

    /// Runs `body` in a task that is already cancelled, as the dispatcher's batches are once the
    /// grace period has passed.
    static func cancelled<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
        await withTaskGroup(of: T.self) { group in
            group.cancelAll()
            group.addTask { await body() }
            return await group.next()!
        }
    }

    @Test("results already received are written even by a cancelled task")
    func writtenAfterCancellation() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let results = try await Self.acceptedResults(fixture)
            #expect(results.count == 4)
            try await closing(try await TestDatabase.pool(maxConnections: 2)) { database throws in
                let recorder = ResultRecorder(clientAccountID: fixture.client, database: database, store: fixture.planner.deliveries,
                                              owner: "recorder-test", clock: SystemClock(), logger: Logger(label: "test"))
                let recording = await Self.cancelled { await recorder.record(results) }
                #expect(recording.stored)
                #expect(recorder.unwritten == 0)
            }
            let accepted = try await fixture.connection.query(
                "SELECT count(*) AS n FROM callwindow.deliveries WHERE id = ANY($1) AND state = 'accepted'", results.map(\.delivery.id))[0]
                .decode("n", as: Int.self)
            #expect(accepted == 4)
        }
    }

    @Test("a database that cannot take them: the recorder gives up 10 s after cancellation, on the clock, and counts what it could not write")
    func givesUpAtTheDeadline() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let results = try await Self.acceptedResults(fixture)
            // Nothing listens on port 1: every connection attempt fails at once.
            let nowhere = try PostgresConfiguration("postgres://callwindow@127.0.0.1:1/callwindow?connect_timeout=2")
            try await closing(PostgresPool(configuration: nowhere, maxConnections: 1)) { database throws in
                let clock = ManualClock(start: december + 9 * hour)
                let recorder = ResultRecorder(clientAccountID: fixture.client, database: database, store: fixture.planner.deliveries,
                                              owner: "recorder-test", clock: clock, logger: Logger(label: "test"))
                let recording = try await withSimulatedTime(on: clock, busy: { false }, "the recorder to reach its deadline") {
                    await Self.cancelled { await recorder.record(results) }
                }
                #expect(!recording.stored)
                #expect(recorder.unwritten == 4)
                #expect(clock.now() == december + 9 * hour + 10_000, "it tried until exactly 10 s after cancellation")
            }
        }
    }
}
