public import Planning
import Synchronization

/// A wait in a test ran out of its real-time budget: names what it waited for.
public struct TimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// Waits until `condition` holds, polling every `interval` of real time; fails after `timeout`.
/// For conditions outside the test's control (a server answering, a process writing a file).
/// A test never uses it to let time pass on a `ManualClock`: see `ManualClock.advance(by:whenSleepers:)`.
public func waitUntil(
    timeout: Duration = .seconds(10), interval: Duration = .milliseconds(20),
    _ what: String, _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    throw TimedOut(description: "timed out after \(timeout) waiting for: \(what)")
}

/// Runs `body`, failing with `TimedOut` (naming `what`) if it has not finished within `timeout`
/// of real time. The body is cancelled then, but not awaited: a body that ignores cancellation
/// cannot turn a failed wait into a hang.
public func withTimeout<T: Sendable>(
    _ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = ResumeOnce<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            once.install(continuation)
            let work = Task {
                do { once.resume(with: .success(try await body())) } catch { once.resume(with: .failure(error)) }
            }
            let timer = Task {
                try await Task.sleep(for: timeout)
                if once.resume(with: .failure(TimedOut(description: "timed out after \(timeout): \(what)"))) { work.cancel() }
            }
            once.onResume { timer.cancel() }
        }
    } onCancel: {
        once.resume(with: .failure(CancellationError()))
    }
}

/// The first of several racing outcomes resumes the continuation; the others are dropped.
private final class ResumeOnce<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var pending: Result<T, any Error>?
        var done = false
        var cleanup: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func install(_ continuation: CheckedContinuation<T, any Error>) {
        let early: Result<T, any Error>? = state.withLock { state in
            if let pending = state.pending {
                state.pending = nil
                return pending
            }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func onResume(_ cleanup: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.done { return true }
            state.cleanup = cleanup
            return false
        }
        if runNow { cleanup() }
    }

    /// Returns true when this call was the first.
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        let (first, continuation, cleanup) = state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            if state.done { return (false, nil, nil) }
            state.done = true
            let continuation = state.continuation
            state.continuation = nil
            if continuation == nil { state.pending = result }
            defer { state.cleanup = nil }
            return (true, continuation, state.cleanup)
        }
        continuation?.resume(with: result)
        cleanup?()
        return first
    }
}

extension ManualClock {
    /// Waits (real time, at most `timeout`) until at least `count` tasks sleep on this clock.
    /// Fails with a message naming `what` and the sleepers seen.
    public func waitForSleepers(_ count: Int, timeout: Duration = .seconds(30), _ what: String) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while sleeperCount < count {
            guard clock.now < deadline else {
                throw TimedOut(description: "timed out after \(timeout) waiting for \(count) sleepers on the manual clock (\(sleeperCount) asleep): \(what)")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Moves the clock by `milliseconds` once at least `sleepers` tasks sleep on it: the only
    /// way a test lets simulated time pass. Fails (real-time `timeout`) naming `what`.
    public func advance(by milliseconds: Int64, whenSleepers sleepers: Int, timeout: Duration = .seconds(30), _ what: String) async throws {
        try await waitForSleepers(sleepers, timeout: timeout, what)
        advance(by: milliseconds)
    }
}
