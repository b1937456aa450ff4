import Foundation
import Logging
import Planning
import Postgres
@testable import Scheduler
import Store
import TestSupport
import Testing

@Suite("A leader whose database goes quiet", .timeLimit(.minutes(2)))
struct LeaderLivenessTests {
    /// Whether some session holds the advisory lock of `client`'s leadership.
    static func held(_ client: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query(
            """
            SELECT count(*) AS n FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = $1
            """, Leader.leadershipKey(client))[0].decode("n", as: Int.self) == 1
    }

    @Test("behind a proxy that black-holes its connection, a leader gives up its lead within heartbeat + 2 answer limits of simulated time; another instance leads once the server lets go")
    func givesUpTheLead() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let direct = try TestDatabase.configuration()
            let target = direct.hostAndPort
            let proxy = try BlackHoleProxy(upstreamHost: target.host, upstreamPort: target.port)
            defer { proxy.close() }
            let clock = ManualClock(start: december)
            let liveness = LeaderLiveness(answerLimitMs: 15_000)
            let logger = Logger(label: "test")
            let cutOff = Leader(configuration: direct.routed(host: "127.0.0.1", port: proxy.port), clients: [fixture.client],
                                planner: fixture.planner, clock: clock, liveness: liveness, logger: logger)
            let standby = Leader(configuration: direct, clients: [fixture.client], planner: fixture.planner, clock: clock,
                                 liveness: liveness, logger: logger)
            try await withServices([cutOff], logger: logger) {
              try await waitUntil(timeout: .seconds(30), "the first leader to lead") { cutOff.leads == [fixture.client] }
              try await withServices([standby], logger: logger) {
                // A blocked leader would hold up the services' shutdown: whatever happens, the
                // proxy lets go first.
                do {
                    try await waitUntil(timeout: .seconds(30), "the standby's first round") { standby.lastCycleAt > 0 }
                    #expect(standby.leads.isEmpty)
                    // Both wait on the clock: the leader for its next upkeep, the standby for its heartbeat.
                    try await clock.waitForSleepers(2, "both leaders to wait")

                    proxy.cut()
                    let cutAt = clock.now()
                    // Simulated time moves in 100 ms steps, each once both are waiting on the
                    // clock again (the leader's round is watched on it): it reaches the leader's
                    // next upkeep, whose statement is never answered, and the watchdog's limit.
                    while !cutOff.leads.isEmpty {
                        try #require(clock.now() - cutAt <= liveness.giveUpWithinMs,
                                     "still leading \(clock.now() - cutAt) ms after the cut (bound \(liveness.giveUpWithinMs) ms)")
                        try await clock.advance(by: 100, whenSleepers: 2, "both leaders to wait on the clock")
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    let gaveUpAfter = clock.now() - cutAt
                    #expect(gaveUpAfter >= liveness.answerLimitMs, "it gave up only once a round had gone unanswered for the limit (\(gaveUpAfter) ms)")
                    // The server has not noticed (the proxy still holds its side open): the lock
                    // stays taken, so the standby cannot lead yet, and never both lead.
                    #expect(try await Self.held(fixture.client, on: fixture.connection))
                    #expect(standby.leads.isEmpty)

                    // The server lets go (as its idle_session_timeout or keepalives would).
                    proxy.close()
                    try await waitUntil(timeout: .seconds(30), "the server to end the cut-off session") {
                        try await !Self.held(fixture.client, on: fixture.connection)
                    }
                    let releasedAt = clock.now()
                    while standby.leads != [fixture.client] {
                        try #require(clock.now() - releasedAt <= Leader.heartbeatMs + 1_000, "the standby did not take the lead at its heartbeat")
                        try await clock.advance(by: 100, whenSleepers: 2, "both leaders to wait on the clock")
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    #expect(cutOff.leads.isEmpty)
                } catch {
                    proxy.close()
                    throw error
                }
              }
            }
        }
    }

    @Test("a round the server is still working on is waited for: the watchdog asks the server before it severs")
    func aLongStatementIsNotSevered() async throws {
        try await closing(try await TestDatabase.connect()) { observer throws in
            let configuration = try TestDatabase.configuration()
            let connection = try await PostgresConnection.connect(configuration)
            let clock = ManualClock(start: december)
            let watchdog = SessionWatchdog(connection: connection, configuration: configuration, clock: clock,
                                           liveness: LeaderLiveness(answerLimitMs: 1_000))
            let watching = Task { try await watchdog.watch() }
            let gate = "lock_\(UUID().uuidString.prefix(8))"
            let key = Int64.random(in: 1...Int64.max)
            // The observer holds a lock the watched round waits for: a statement active on the server.
            try await observer.query("SELECT pg_advisory_lock($1)", key)
            let round = Task {
                try await watchdog.round { try await connection.query("SELECT pg_advisory_lock($1) AS \(gate)", key) }
            }
            try await ConnectionTestsSupport.waitUntilRunning(gate, backend: connection.backendPID, observer: observer)
            try await clock.waitForSleepers(1, "the watchdog to wait for the round's answer")
            // Three times the limit passes; each time the server says the backend is working. A
            // check sleeps on the clock too (its own limit): the step is over once it ended and
            // the watchdog waits again.
            for step in 1...3 {
                let sleeps = clock.sleepsStarted
                clock.advance(by: 1_000)
                try await waitUntil(timeout: .seconds(30), "check \(step) to be made and the watchdog to wait again") {
                    clock.sleepsStarted >= sleeps + 2 && clock.sleeperCount == 1
                }
            }
            try await observer.query("SELECT pg_advisory_unlock($1)", key)
            _ = try await withTimeout(.seconds(30), "the round to be answered") { try await round.value }
            #expect(await connection.isUsable, "the connection was not severed")
            watching.cancel()
            try await withTimeout(.seconds(30), "the watchdog to stop") { try await watching.value }
            await connection.close()
        }
    }
}

enum ConnectionTestsSupport {
    /// Waits until backend `pid` runs a statement containing `text`.
    static func waitUntilRunning(_ text: String, backend pid: Int32, observer: PostgresConnection) async throws {
        try await waitUntil(timeout: .seconds(30), "backend \(pid) to run \(text)") {
            try await observer.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND position($2 in query) > 0",
                pid, text)[0].decode("n", as: Int.self) == 1
        }
    }
}
