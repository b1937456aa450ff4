import Foundation
import Logging
import Planning
import Postgres
import Sandbox
import Scheduler
import Store
import TestSupport
import Testing
import TokenPool

/// The dispatchers of a process as one service whose accounts change while it runs (a reload).
@Suite("The dispatcher group: accounts added and drained while it runs", .timeLimit(.minutes(3)))
struct DispatcherGroupTests {
    /// The campaign's records by state.
    static func states(_ bench: DispatcherTests.Bench) async throws -> [String: Int] {
        var states: [String: Int] = [:]
        for row in try await bench.fixture.connection.query(
            "SELECT state, count(*) AS n FROM callwindow.deliveries WHERE campaign_id = $1 GROUP BY state", bench.campaign) {
            states[try row.decode("state", as: String.self)] = try row.decode("n", as: Int.self)
        }
        return states
    }

    /// The account's stored tokens still leased by anyone.
    static func leasedTokens(_ bench: DispatcherTests.Bench) async throws -> Int {
        try await bench.fixture.connection.query(
            "SELECT count(*) AS n FROM callwindow.tokens WHERE client_account_id = $1 AND lease_owner IS NOT NULL",
            bench.fixture.client)[0].decode("n", as: Int.self)
    }

    @Test("a drained account stops claiming, writes every result of the batches it had out and releases its tokens; added again, it finishes the window")
    func drainAndAddBack() async throws {
        // 900 records at one token's 100/s, answers 50-150 ms late: batches are out when the drain comes.
        try await Self.withWindow(receivers: 300, faults: .init(latencyP50Ms: 50, latencyP99Ms: 150)) { bench in
            let first = bench.dispatcher(try bench.pool(maxTokens: 1, instance: "group-a"), owner: "group-a")
            let group = DispatcherGroup([first], drainLimitMs: 120_000, clock: bench.clock, logger: Logger(label: "test"))
            try await withServices([group], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(60), "some records accepted") { first.counts.accepted >= 100 }
                #expect(group.accounts == [bench.fixture.client])
                #expect(group.drain(bench.fixture.client))
                #expect(group.accounts.isEmpty)
                #expect(!group.drain(bench.fixture.client), "draining twice does nothing")
                try await waitUntil(timeout: .seconds(60), "the drain to end") { group.drainingAccounts.isEmpty }
                let counts = first.counts
                #expect(counts.claimed == counts.accepted + counts.released, "every claimed record's result is written: \(counts)")
                #expect(counts.recordFailures == 0)
                let states = try await Self.states(bench)
                #expect(states["in_flight"] == nil, "nothing left claimed: \(states)")
                #expect(states["accepted"] == counts.accepted)
                #expect((states["pending"] ?? 0) > 0, "the rest waits in the queue: \(states)")
                #expect(try await Self.leasedTokens(bench) == 0, "the drained account's token lease is released")
                #expect(first.tokenPool.fingerprints.isEmpty)

                // Added again (a later reload), by a dispatcher of its own: the window completes.
                let second = bench.dispatcher(try bench.pool(maxTokens: 1, instance: "group-b"), owner: "group-b")
                #expect(group.add(second))
                #expect(!group.add(bench.dispatcher(try bench.pool(maxTokens: 1, instance: "group-c"), owner: "group-c")),
                        "an account already served is not added twice")
                try await waitUntil(timeout: .seconds(90), "every record accepted") { try await Self.states(bench)["accepted"] == 900 }
                #expect(group.all.count == 2)
            }
        }
    }

    @Test("a drain that outlasts its limit cancels the sends still out: their records go back to the queue, with the results gathered written")
    func drainLimit() async throws {
        // Every answer takes about 2 s: a batch is always out.
        try await Self.withWindow(receivers: 100, faults: .init(latencyP50Ms: 2_000, latencyP99Ms: 2_200)) { bench in
            let dispatcher = bench.dispatcher(try bench.pool(maxTokens: 1, instance: "group-limit"), owner: "group-limit")
            let group = DispatcherGroup([dispatcher], drainLimitMs: 100, clock: bench.clock, logger: Logger(label: "test"))
            try await withServices([group], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(60), "a batch out") { dispatcher.counts.claimed > 0 && dispatcher.tokenPool.inFlight > 0 }
                group.drain(bench.fixture.client)
                try await waitUntil(timeout: .seconds(60), "the drain to end") { group.drainingAccounts.isEmpty }
                let counts = dispatcher.counts
                #expect(counts.released > 0, "the records still being sent went back to the queue: \(counts)")
                #expect(counts.claimed == counts.accepted + counts.released, "\(counts)")
                #expect(try await Self.states(bench)["in_flight"] == nil)
                #expect(try await Self.leasedTokens(bench) == 0)
            }
        }
    }

    /// `DispatcherTests.withDueWindow` with answers slowed by `faults`.
    static func withWindow(receivers: Int, faults: SandboxConfiguration.Faults, _ body: @Sendable (DispatcherTests.Bench) async throws -> Void) async throws {
        try await DispatcherTests.withDueWindow(receivers: receivers, faults: faults, body)
    }
}
