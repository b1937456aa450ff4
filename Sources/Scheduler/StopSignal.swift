public import Foundation
public import Planning
import Synchronization

/// A one-way signal for a service's loop: once fired (graceful shutdown) it stays fired, and
/// every sleep taken through it ends at once. Sleeps are on the injected clock, so a test on a
/// `ManualClock` sees them as sleepers and a stopping service never waits for time to move.
public final class StopSignal: Sendable {
    private let core = SignalCore(sticky: true)

    /// A signal not fired yet.
    public init() {}

    /// Whether `fire()` was called.
    public var isFired: Bool { core.isSet }

    /// Fires the signal: current and later sleeps through it return at once.
    public func fire() { core.fire() }

    /// Sleeps until `deadline` (epoch ms) on `clock`, or until the signal fires or the task is
    /// cancelled, whichever comes first.
    public func sleep(until deadline: Int64, on clock: any WallClock) async {
        await core.sleep(until: deadline, on: clock)
    }

    /// Waits, without a deadline and off the clock, until the signal fires or the task is cancelled.
    public func wait() async {
        _ = await core.wait()
    }
}

/// A wake-up for an idle loop: `fire()` ends the current sleep through it, or — when none is
/// under way — the next one, at once. Each sleep consumes the wake-ups fired before it, so a
/// loop that re-checks its work after every wake never misses one and never spins on an old one.
public final class WakeSignal: Sendable {
    private let core = SignalCore(sticky: false)

    /// A signal with no wake-up pending.
    public init() {}

    /// Wakes the sleeper, or the next one if none sleeps now.
    public func fire() { core.fire() }

    /// Sleeps until `deadline` (epoch ms) on `clock`, or until a wake-up (one already pending
    /// included), or cancellation. Returns whether a wake-up ended it.
    @discardableResult
    public func sleep(until deadline: Int64, on clock: any WallClock) async -> Bool {
        await core.sleep(until: deadline, on: clock)
    }

    /// Waits, without a deadline and off the clock (a `ManualClock` does not count it as a
    /// sleeper), until a wake-up (one already pending included) or cancellation.
    public func wait() async {
        _ = await core.wait()
    }
}

/// One `WakeSignal` per client account of a process: the leader fires an account's when a
/// NOTIFY says it has work due (deliveries created, rescued or returned to the queue), and
/// every account's when it (re)connects, since notifications sent while it was away are lost.
/// Accounts come and go with a reload (`add`, `remove`).
public final class DueWakes: Sendable {
    private let signals: Mutex<[UUID: WakeSignal]>

    /// Signals for `accounts`.
    public init(accounts: [UUID]) {
        signals = Mutex(Dictionary(accounts.map { ($0, WakeSignal()) }, uniquingKeysWith: { first, _ in first }))
    }

    /// The signal of `account` (a fresh one, never fired, for an account not configured).
    public func signal(for account: UUID) -> WakeSignal { signals.withLock { $0[account] } ?? WakeSignal() }

    /// The signal of `account`, added if it has none yet.
    public func add(_ account: UUID) -> WakeSignal {
        signals.withLock { signals in
            if let signal = signals[account] { return signal }
            let signal = WakeSignal()
            signals[account] = signal
            return signal
        }
    }

    /// Forgets `account`: it is no longer woken.
    public func remove(_ account: UUID) {
        _ = signals.withLock { $0.removeValue(forKey: account) }
    }

    /// Wakes `account`'s dispatcher; an account not configured here is ignored.
    public func fire(_ account: UUID) { signals.withLock { $0[account] }?.fire() }

    /// Wakes every account's dispatcher.
    public func fireAll() {
        for signal in signals.withLock({ Array($0.values) }) { signal.fire() }
    }
}

/// The mechanism of both signals: a flag, and the sleepers waiting for it. `sticky`: the flag
/// stays set once fired; otherwise a sleep consumes it.
private final class SignalCore: Sendable {
    private struct State {
        var set = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let sticky: Bool
    private let state = Mutex(State())

    init(sticky: Bool) { self.sticky = sticky }

    var isSet: Bool { state.withLock { $0.set } }

    func fire() {
        let waiters = state.withLock { state in
            // A wake-up with a sleeper is delivered to it; without one it waits for the next.
            state.set = sticky || state.waiters.isEmpty
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Takes a pending flag (keeping it when sticky); whether one was set.
    private func take() -> Bool {
        state.withLock { state in
            guard state.set else { return false }
            if !sticky { state.set = false }
            return true
        }
    }

    func sleep(until deadline: Int64, on clock: any WallClock) async -> Bool {
        if take() { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { try? await clock.sleep(until: deadline); return false }
            group.addTask { await self.waitForFire() }
            let woken = await group.next() ?? false
            group.cancelAll()
            return woken
        }
    }

    /// Takes a pending flag, or waits for the next fire; false when the task is cancelled.
    func wait() async -> Bool {
        if take() { return true }
        return await waitForFire()
    }

    /// Returns true once fired, false when the task is cancelled.
    private func waitForFire() async -> Bool {
        let id: UInt64 = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.set {
                        if !sticky { state.set = false }
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return !Task.isCancelled
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
