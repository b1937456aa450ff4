import Foundation
import Planning
@testable import Scheduler
@testable import Store
import Synchronization
import TestSupport
import Testing

@Suite("Results are written in small groups while a batch is out", .timeLimit(.minutes(1)))
struct ResultGroupsTests {
    static func result(_ id: Int64) -> DeliveryResult {
        let delivery = Delivery(id: id, clientAccountID: UUID(), campaignID: 1, windowID: 1, caller: "4930000001", receiver: "4915100000\(id)",
                                labelID: UUID(), labelName: nil, callReason: nil, startsAt: 0, endsAt: 1, deadline: 0, pushAt: 0,
                                attempts: 1, leaseToken: 1)
        return DeliveryResult(delivery: delivery, next: .accepted, outcome: .accepted)
    }

    /// Runs `groups` with a writer that notes each group's ids, and `body` beside it.
    /// The ids of each group written, in order.
    final class Written: Sendable {
        private let groups = Mutex<[[Int64]]>([])
        var count: Int { groups.withLock { $0.count } }
        var all: [[Int64]] { groups.withLock { $0 } }
        func append(_ results: [DeliveryResult]) { groups.withLock { $0.append(results.map(\.delivery.id)) } }
    }

    /// Runs `groups` with a writer that notes each group's ids, and `body` beside it; returns
    /// every group written, once `run` has returned.
    static func writing(_ groups: ResultGroups, _ body: @Sendable (Written) async throws -> Void) async throws -> [[Int64]] {
        let written = Written()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await groups.run { results in written.append(results) } }
            try await body(written)
            try await group.waitForAll()
        }
        return written.all
    }

    @Test("a group is written once its first result is 100 ms old on the clock, not before; the rest at close")
    func groupsAreWrittenOnTheInterval() async throws {
        let clock = ManualClock(start: 1_000_000)
        let groups = ResultGroups(intervalMs: 100, maxGroup: 500, clock: clock)
        let all = try await Self.writing(groups) { written in
            groups.add([Self.result(1), Self.result(2)])
            try await clock.waitForSleepers(1, "the writer waits for the interval")
            clock.advance(by: 60)
            groups.add([Self.result(3)])
            try await clock.waitForSleepers(1, "the writer waits for the rest of the interval")
            #expect(written.count == 0, "nothing written before the first result is 100 ms old")
            clock.advance(by: 40)
            try await waitUntil("the first group written") { written.count == 1 }
            #expect(written.all == [[1, 2, 3]])
            groups.close(adding: [Self.result(4)])
        }
        #expect(all == [[1, 2, 3], [4]], "the last result written at close, without the clock moving")
        #expect(clock.now() == 1_000_100)
    }

    @Test("a claim batch's worth of results is written at once, without waiting for the interval")
    func aFullGroupGoesAtOnce() async throws {
        let clock = ManualClock(start: 1_000_000)
        let groups = ResultGroups(intervalMs: 100, maxGroup: 3, clock: clock)
        let all = try await Self.writing(groups) { written in
            groups.add([Self.result(1), Self.result(2)])
            try await clock.waitForSleepers(1, "the writer waits for the interval")
            groups.add([Self.result(3)])
            try await waitUntil("the full group written without the clock moving") { written.count == 1 }
            groups.close(adding: [Self.result(4), Self.result(5)])
        }
        #expect(all == [[1, 2, 3], [4, 5]])
        #expect(clock.now() == 1_000_000, "no time had to pass")
    }

    @Test("a cancelled batch still writes everything it was given, without waiting for the clock")
    func cancelledWritesEverything() async throws {
        let clock = ManualClock(start: 1_000_000)
        let groups = ResultGroups(intervalMs: 100, maxGroup: 500, clock: clock)
        let written = Written()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await groups.run { results in written.append(results) } }
            groups.add([Self.result(1)])
            try await clock.waitForSleepers(1, "the writer waits for the interval")
            group.cancelAll()
            try await waitUntil("the group written once cancelled") { written.all == [[1]] }
            groups.add([Self.result(2)])
            groups.close(adding: [Self.result(3)])
            try await group.waitForAll()
        }
        #expect(written.all.joined().sorted() == [1, 2, 3])
        #expect(clock.now() == 1_000_000)
    }
}
