// A batch's results on their way to the database. The records the API settles are written in
// small groups while the batch is still out — at most `intervalMs` after the first of a group
// arrived, or at once when `maxGroup` wait — and the rest (expired, released, withdrawn,
// invalid) when the batch is over. So a process killed mid-batch loses at most what was in
// HTTP flight and one interval of answers, not a whole batch's.

import Planning
import Store
import Synchronization

/// The results of one batch, written in groups by `run`.
final class ResultGroups: Sendable {
    private struct State {
        var pending: [DeliveryResult] = []
        var firstAt: Int64?
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let due = WakeSignal()
    private let intervalMs: Int64
    private let maxGroup: Int
    private let clock: any WallClock

    /// Groups written at most `intervalMs` (on `clock`) after their first result arrived, or as
    /// soon as `maxGroup` results wait.
    init(intervalMs: Int64, maxGroup: Int, clock: any WallClock) {
        self.intervalMs = intervalMs
        self.maxGroup = max(1, maxGroup)
        self.clock = clock
    }

    /// Results to write with the next group.
    func add(_ results: [DeliveryResult]) {
        guard !results.isEmpty else { return }
        let now = clock.now()
        let (waiter, full): (CheckedContinuation<Void, Never>?, Bool) = state.withLock { state in
            state.pending += results
            if state.firstAt == nil { state.firstAt = now }
            defer { state.waiter = nil }
            return (state.waiter, state.pending.count >= maxGroup)
        }
        waiter?.resume()
        if full { due.fire() }
    }

    /// The batch is over: `results` are its last; `run` writes what is left and returns.
    func close(adding results: [DeliveryResult]) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            state.pending += results
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
        due.fire()
    }

    /// Writes the groups through `write` until `close` and every result is written. Once the
    /// task is cancelled, it writes what arrives without waiting for the interval.
    func run(_ write: ([DeliveryResult]) async -> Void) async {
        while true {
            let (count, firstAt, closed) = state.withLock { ($0.pending.count, $0.firstAt, $0.closed) }
            if count == 0 {
                if closed { return }
                await waitForResults()
                continue
            }
            if !closed, count < maxGroup, !Task.isCancelled, let firstAt, clock.now() < firstAt + intervalMs {
                await due.sleep(until: firstAt + intervalMs, on: clock)
                continue
            }
            let group: [DeliveryResult] = state.withLock { state in
                defer {
                    state.pending = []
                    state.firstAt = nil
                }
                return state.pending
            }
            await write(group)
        }
    }

    /// Waits for a result or `close`, cancellation or not: `close` always comes, once the batch's
    /// send returns, and a cancelled writer must still write what it brings.
    private func waitForResults() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if !state.pending.isEmpty || state.closed { return true }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
