import Foundation
import Planning
import Postgres
import Store
import Synchronization

/// How a leader notices that its database went quiet: what TCP keepalives cannot see behind a
/// proxy that still acknowledges, or see only after minutes.
public struct LeaderLiveness: Sendable, Equatable {
    /// A round on the database (planning, upkeep, the heartbeat) with no answer for this long
    /// on the injected clock is looked into: if the server says the leader's backend is not
    /// working on a statement (or cannot be asked), the connection is severed and every lead
    /// given up. Default 15 s.
    public var answerLimitMs: Int64 = 15_000

    /// The defaults.
    public init() {}

    /// A liveness check looking into rounds unanswered for `answerLimitMs` (at least 1 ms).
    public init(answerLimitMs: Int64) {
        self.answerLimitMs = max(1, answerLimitMs)
    }

    /// The longest a leader cut off from its database goes on leading, on the injected clock:
    /// the heartbeat brings a round within `Leader.heartbeatMs`, and a round that stops
    /// being answered is looked into within twice the answer limit (once on time, once more
    /// when an answer had come in just before).
    public var giveUpWithinMs: Int64 { Leader.heartbeatMs + 2 * answerLimitMs }
}

/// Why a session was severed.
struct SessionSevered: Error, CustomStringConvertible {
    let unansweredMs: Int64
    let reason: String
    var description: String { "no answer from the database for \(unansweredMs) ms (\(reason)); the connection was severed" }
}

/// Watches one leader session's rounds on its connection (`begin`/`end` around each), on the
/// injected clock. A round whose connection got no answer for `answerLimitMs` is looked into
/// from a fresh connection: a backend still running a statement (a long materialisation) is
/// waited for; otherwise — the backend idle or gone, or the server unreachable — the connection
/// is severed, so the blocked round fails at once and the leader gives up its leads.
///
/// Between rounds it waits off the clock (a `ManualClock` does not count it as a sleeper).
final class SessionWatchdog: Sendable {
    private let connection: PostgresConnection
    private let probe: PostgresConfiguration
    private let clock: any WallClock
    private let limitMs: Int64
    /// The round in flight: its number and start (epoch ms), or nil between rounds.
    private let inFlight = Mutex<(number: UInt64, startedAt: Int64)?>(nil)
    private let rounds = Atomic<UInt64>(0)
    private let started = WakeSignal()
    private let ended = WakeSignal()

    /// Watches `connection` (opened from `configuration`, which the probe uses too).
    init(connection: PostgresConnection, configuration: PostgresConfiguration, clock: any WallClock, liveness: LeaderLiveness) {
        self.connection = connection
        var probe = configuration
        probe.connectTimeoutSeconds = min(probe.connectTimeoutSeconds, 5)
        probe.applicationName = "callwindow leader check"
        probe.statementTimeoutMs = 5_000
        probe.idleSessionTimeoutMs = nil
        self.probe = probe
        self.clock = clock
        limitMs = liveness.answerLimitMs
    }

    /// A round on the database starts.
    func begin() {
        let number = rounds.add(1, ordering: .relaxed).newValue
        let now = clock.now()
        inFlight.withLock { $0 = (number, now) }
        started.fire()
    }

    /// The round in flight ended (answered, or failed).
    func end() {
        inFlight.withLock { $0 = nil }
        ended.fire()
    }

    /// Runs `body` as one round.
    func round<T>(_ body: () async throws -> T) async throws -> T {
        begin()
        defer { end() }
        return try await body()
    }

    /// Watches until cancelled (returns) or until it severed the connection (throws
    /// `SessionSevered`).
    func watch() async throws {
        while !Task.isCancelled {
            guard let current = inFlight.withLock({ $0 }) else {
                await started.wait()
                continue
            }
            var checkAt = current.startedAt + limitMs
            var answers = connection.answers
            var quietSince = current.startedAt
            while !Task.isCancelled {
                await ended.sleep(until: checkAt, on: clock)
                if Task.isCancelled { return }
                guard inFlight.withLock({ $0?.number }) == current.number else { break }
                let now = clock.now()
                guard now >= checkAt else { continue }  // a stale wake-up of an earlier round's end
                let seen = connection.answers
                if seen != answers {
                    // Answers still come in (a round of many statements): alive.
                    (answers, quietSince, checkAt) = (seen, now, now + limitMs)
                    continue
                }
                let verdict = await backendState()
                if connection.answers != answers || inFlight.withLock({ $0?.number }) != current.number { continue }
                if verdict == "active" {
                    checkAt = clock.now() + limitMs  // one long statement, still running
                    continue
                }
                connection.sever()
                throw SessionSevered(unansweredMs: clock.now() - quietSince, reason: verdict)
            }
        }
    }

    /// What the server says of the watched connection's backend: "active" while it runs a
    /// statement, else its state ("idle": the answer was sent and never arrived), "gone", or
    /// why it could not be asked. An unanswered question counts as unreachable after the limit.
    private func backendState() async -> String {
        let pid = connection.backendPID
        let probe = self.probe
        let clock = self.clock
        let deadline = clock.now() + limitMs
        let asked = HeldConnection()
        let verdict = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                do {
                    let other = try await PostgresConnection.connect(probe)
                    asked.connection.withLock { $0 = other }
                    let state = try await LeadershipStore.backendState(pid: pid, on: other)
                    await other.close()
                    return state ?? "gone"
                } catch {
                    return "the server could not be asked: \(error)"
                }
            }
            group.addTask {
                try? await clock.sleep(until: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            // A check left hanging (it too went into the void) is severed, so that it returns
            // and the group can end.
            if first == nil { asked.connection.withLock { $0 }?.sever() }
            group.cancelAll()
            return first ?? "the server did not answer a check either"
        }
        if let other = asked.connection.withLock({ $0 }) { await other.close() }
        return verdict
    }
}

/// The check's connection once open, for severing it should the check hang.
private final class HeldConnection: Sendable {
    let connection = Mutex<PostgresConnection?>(nil)
}
