public import Planning
import Synchronization

/// A one-way signal for a service's loop: once fired (graceful shutdown) it stays fired, and
/// every sleep taken through it ends at once. Sleeps are on the injected clock, so a test on a
/// `ManualClock` sees them as sleepers and a stopping service never waits for time to move.
public final class StopSignal: Sendable {
    private struct State {
        var fired = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// A signal not fired yet.
    public init() {}

    /// Whether `fire()` was called.
    public var isFired: Bool { state.withLock { $0.fired } }

    /// Fires the signal: current and later sleeps through it return at once.
    public func fire() {
        let waiters = state.withLock { state in
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Sleeps until `deadline` (epoch ms) on `clock`, or until the signal fires or the task is
    /// cancelled, whichever comes first.
    public func sleep(until deadline: Int64, on clock: any WallClock) async {
        if isFired { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(until: deadline) }
            group.addTask { await self.waitForFire() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once fired, or when the task is cancelled.
    private func waitForFire() async {
        let id: UInt64 = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
