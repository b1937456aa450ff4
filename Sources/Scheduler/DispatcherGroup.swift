public import Foundation
public import Logging
public import Planning
public import ServiceLifecycle
import Synchronization

/// The dispatchers of the accounts one process serves, run as one service whose set changes
/// while it runs (a reload): `add` starts an account's dispatcher, `drain` stops one account's
/// claims and lets its batches out finish and be recorded (`Dispatcher.drain()`), cancelling
/// what is still being sent after `drainLimitMs` on the injected clock (its records go back to
/// the queue, the results gathered are written). A graceful shutdown drains every dispatcher at
/// once, each as its own graceful shutdown does.
///
/// An account added again while its previous dispatcher still drains starts once that one has
/// finished, so one process never runs two dispatchers of an account.
public final class DispatcherGroup: Service, Sendable {
    private enum Command: Sendable {
        case start(Dispatcher)
        case ended(Dispatcher)
    }

    private struct State {
        /// The dispatcher of each account served now (draining ones are not here).
        var running: [UUID: Dispatcher] = [:]
        /// The order accounts were added in, for `accounts`.
        var order: [UUID] = []
        /// Draining dispatchers by account.
        var draining: [UUID: Dispatcher] = [:]
        /// Dispatchers added while their account's previous one drains.
        var waiting: [UUID: Dispatcher] = [:]
        /// Each member's drain signal (which starts its drain limit), by dispatcher.
        var limits: [ObjectIdentifier: StopSignal] = [:]
        /// Every dispatcher accepted so far, for `all`.
        var known: [Dispatcher] = []
        /// Commands sent before `run()` started (`nil` once it runs).
        var early: [Command]? = []
        var continuation: AsyncStream<Command>.Continuation?
        var stopped = false
    }

    private let state = Mutex(State())
    private let drainLimitMs: Int64
    private let clock: any WallClock
    private let logger: Logger

    /// A group that will run `dispatchers` (one per account; a second one of an account is
    /// ignored), cancelling a removed account's sends `drainLimitMs` after its drain began.
    public init(_ dispatchers: [Dispatcher], drainLimitMs: Int64, clock: any WallClock, logger: Logger) {
        self.drainLimitMs = drainLimitMs
        self.clock = clock
        self.logger = logger
        for dispatcher in dispatchers { add(dispatcher) }
    }

    /// The accounts served now, in the order they were added (draining ones left out).
    public var accounts: [UUID] {
        state.withLock { state in state.order.filter { state.running[$0] != nil || state.waiting[$0] != nil } }
    }

    /// The accounts whose dispatcher is draining now.
    public var drainingAccounts: [UUID] {
        state.withLock { Array($0.draining.keys) }
    }

    /// The dispatcher serving `account` now (or waiting to, behind a drain).
    public func dispatcher(for account: UUID) -> Dispatcher? {
        state.withLock { $0.running[account] ?? $0.waiting[account] }
    }

    /// Every dispatcher this group was given and took, drained ones included: their counts and
    /// unwritten results still matter at exit.
    public var all: [Dispatcher] {
        state.withLock { $0.known }
    }

    /// Starts serving `dispatcher`'s account (once its previous dispatcher drained, if one is
    /// draining). Returns false, doing nothing, when the account is served already or the group
    /// is shutting down.
    @discardableResult
    public func add(_ dispatcher: Dispatcher) -> Bool {
        let account = dispatcher.account
        let taken: (start: Bool, taken: Bool) = state.withLock { state in
            guard !state.stopped, state.running[account] == nil, state.waiting[account] == nil else { return (false, false) }
            state.order.removeAll { $0 == account }
            state.order.append(account)
            state.known.append(dispatcher)
            state.limits[ObjectIdentifier(dispatcher)] = StopSignal()
            if state.draining[account] != nil {
                state.waiting[account] = dispatcher
                return (false, true)
            }
            state.running[account] = dispatcher
            return (true, true)
        }
        if taken.start { send(.start(dispatcher)) }
        return taken.taken
    }

    /// Stops serving `account`: its dispatcher drains (see the type's notes). Returns false when
    /// the group does not serve it.
    @discardableResult
    public func drain(_ account: UUID) -> Bool {
        let found: (dispatcher: Dispatcher, limit: StopSignal?)? = state.withLock { state in
            if let waiting = state.waiting.removeValue(forKey: account) {
                // Never started: forgotten; the one draining goes on.
                state.order.removeAll { $0 == account }
                return (waiting, nil)
            }
            guard let dispatcher = state.running.removeValue(forKey: account) else { return nil }
            state.order.removeAll { $0 == account }
            state.draining[account] = dispatcher
            return (dispatcher, state.limits[ObjectIdentifier(dispatcher)])
        }
        guard let found else { return false }
        guard let limit = found.limit else { return true }
        logger.info("draining client account", metadata: ["client": "\(account.uuidString.lowercased())"])
        found.dispatcher.drain()
        limit.fire()
        return true
    }

    /// Runs the dispatchers, and those added later, until a graceful shutdown (or cancellation)
    /// has drained them all.
    public func run() async throws {
        let (stream, continuation) = AsyncStream<Command>.makeStream()
        let early = state.withLock { state in
            defer { state.early = nil }
            state.continuation = continuation
            return state.early ?? []
        }
        for command in early { continuation.yield(command) }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await command in stream {
                    switch command {
                    case .start(let dispatcher):
                        let limit = state.withLock { $0.limits[ObjectIdentifier(dispatcher)] } ?? StopSignal()
                        group.addTask { await self.member(dispatcher, limit: limit) }
                    case .ended(let dispatcher):
                        if let next = ended(dispatcher) { continuation.yield(.start(next)) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.state.withLock { $0.stopped = true }
            continuation.finish()
        }
    }

    /// One dispatcher's run, cut short `drainLimitMs` after its drain began.
    private func member(_ dispatcher: Dispatcher, limit: StopSignal) async {
        // true: the drain limit passed (not a cancellation of the whole group).
        await withTaskGroup(of: Bool.self) { member in
            member.addTask {
                try? await dispatcher.run()
                return false
            }
            member.addTask {
                await limit.wait()
                guard !Task.isCancelled else { return false }
                try? await self.clock.sleep(until: self.clock.now() + self.drainLimitMs)
                return !Task.isCancelled
            }
            if await member.next() == true {
                logger.warning("drain limit reached: cancelling the sends still out",
                               metadata: ["client": "\(dispatcher.account.uuidString.lowercased())"])
            }
            // The dispatcher ended: the limit is cancelled; or the limit passed: the sends are.
            member.cancelAll()
        }
        send(.ended(dispatcher))
    }

    /// Forgets an ended dispatcher; returns the one waiting to take over its account, if any.
    private func ended(_ dispatcher: Dispatcher) -> Dispatcher? {
        let account = dispatcher.account
        let next: Dispatcher? = state.withLock { state in
            state.limits[ObjectIdentifier(dispatcher)] = nil
            if state.draining[account] === dispatcher { state.draining[account] = nil }
            if state.running[account] === dispatcher { state.running[account] = nil }
            guard !state.stopped, let next = state.waiting.removeValue(forKey: account) else { return nil }
            state.running[account] = next
            return next
        }
        if dispatcher.isDraining, !state.withLock({ $0.stopped }) {
            logger.info("client account drained", metadata: [
                "client": "\(account.uuidString.lowercased())", "accepted": "\(dispatcher.counts.accepted)",
                "released": "\(dispatcher.counts.released)",
            ])
        }
        return next
    }

    private func send(_ command: Command) {
        let continuation: AsyncStream<Command>.Continuation? = state.withLock { state in
            if state.early != nil {
                state.early?.append(command)
                return nil
            }
            return state.continuation
        }
        continuation?.yield(command)
    }
}
