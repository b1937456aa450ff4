public import Foundation
import Synchronization

/// Where every component gets the time of day (invariant 6: nothing reads the wall clock directly).
///
/// Instants are epoch milliseconds, the unit of the API. `SystemClock` is the only type that
/// reads the real clock; tests and simulations inject a `ManualClock` and move it by hand.
public protocol WallClock: Sendable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    func now() -> Int64
    /// Suspends until `now() >= deadline` (epoch ms); throws `CancellationError` when cancelled.
    func sleep(until deadline: Int64) async throws
    /// Suspends until `now() >= deadline` even if the task is cancelled: for the few waits that
    /// must happen anyway (the back-off of writing results already received, at shutdown).
    func sleepIgnoringCancellation(until deadline: Int64) async
}

extension WallClock {
    /// Suspends for `milliseconds` of this clock's time.
    public func sleep(milliseconds: Int64) async throws {
        try await sleep(until: now() + milliseconds)
    }
}

/// The real clock: `Date()` for the time, `Task.sleep` for waiting.
public struct SystemClock: WallClock {
    public init() {}

    public func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    public func sleep(until deadline: Int64) async throws {
        let remaining = deadline - now()
        if remaining > 0 {
            try await Task.sleep(for: .milliseconds(remaining))
        }
    }

    public func sleepIgnoringCancellation(until deadline: Int64) async {
        let remaining = deadline - now()
        guard remaining > 0 else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(remaining))) { continuation.resume() }
        }
    }
}

/// A clock `offsetMs` ahead of `base` (behind when negative): what a host whose clock is wrong
/// reads. The daemon uses it only under the test-only `CALLWINDOW_TEST_CLOCK_SKEW_MS`, so that
/// the reliability suite can run instances on skewed clocks; tests wrap a `ManualClock` in it.
public struct OffsetClock: WallClock {
    /// The clock it shifts.
    public let base: any WallClock
    /// How far ahead of `base` it reads, in ms.
    public let offsetMs: Int64

    /// `base` shifted by `offsetMs`.
    public init(base: any WallClock, offsetMs: Int64) {
        self.base = base
        self.offsetMs = offsetMs
    }

    public func now() -> Int64 { base.now() + offsetMs }

    public func sleep(until deadline: Int64) async throws {
        try await base.sleep(until: deadline - offsetMs)
    }

    public func sleepIgnoringCancellation(until deadline: Int64) async {
        await base.sleepIgnoringCancellation(until: deadline - offsetMs)
    }
}

/// A clock that moves only when told to: `advance(by:)` / `set(to:)` wake every sleeper whose
/// deadline has been reached, in deadline order. For tests and simulated runs.
public final class ManualClock: WallClock {
    private struct Sleeper {
        let id: UInt64
        let deadline: Int64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Int64
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
    }

    private let state: Mutex<State>

    /// Starts the clock at `start` (epoch ms).
    public init(start: Int64) {
        state = Mutex(State(now: start))
    }

    public func now() -> Int64 {
        state.withLock { $0.now }
    }

    /// Number of tasks currently suspended in `sleep(until:)`.
    public var sleeperCount: Int {
        state.withLock { $0.sleepers.count }
    }

    /// How many times `sleep(until:)` has been called: with `sleeperCount`, tells a simulation
    /// whether anything moved between two looks.
    public var sleepsStarted: UInt64 {
        state.withLock { $0.nextID }
    }

    /// The earliest deadline among the tasks suspended in `sleep(until:)`, if any.
    public var nextDeadline: Int64? {
        state.withLock { $0.sleepers.map(\.deadline).min() }
    }

    /// Moves the clock to the earliest sleeper's deadline (never backwards) and wakes it; returns
    /// the new time, or `nil` when nobody sleeps.
    @discardableResult
    public func advanceToNextDeadline() -> Int64? {
        guard let deadline = nextDeadline else { return nil }
        set(to: deadline)
        return now()
    }

    /// Moves the clock forward by `milliseconds` and wakes sleepers that are due.
    public func advance(by milliseconds: Int64) {
        set(to: now() + milliseconds)
    }

    /// Moves the clock to `instant` (never backwards) and wakes sleepers that are due.
    public func set(to instant: Int64) {
        let due: [Sleeper] = state.withLock { state in
            state.now = max(state.now, instant)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Like `sleep(until:)`, but cancellation does not end the wait: only the clock reaching
    /// `deadline` does.
    public func sleepIgnoringCancellation(until deadline: Int64) async {
        let id: UInt64 = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try? await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let resumeNow: Bool = state.withLock { state in
                if state.now >= deadline { return true }
                state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    public func sleep(until deadline: Int64) async throws {
        let id: UInt64 = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Bool = state.withLock { state in
                    if state.now >= deadline || Task.isCancelled { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resumeNow {
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume()
                    }
                }
            }
        } onCancel: {
            let cancelled: Sleeper? = state.withLock { state in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }
}
