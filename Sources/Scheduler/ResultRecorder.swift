// The result recorder writes what the API answered: each delivery's next state and an audit row
// per attempt, in one transaction fenced by the claim lease (`DeliveryStore.record`). It keeps
// retrying while the database is away, because the attempts happened and must be audited, and
// it reports what each result means for the metrics.

public import Foundation
public import Logging
public import Planning
public import Postgres
public import Store
import CallRecordAPI
import Metrics
import Synchronization

/// How one batch of results was written.
public struct Recording: Sendable, Equatable {
    /// The results are in the database.
    public var stored: Bool
    /// Failed attempts to write them before they were stored or given up.
    public var failures: Int
    /// Real time the successful write took, in ms (0 when given up).
    public var databaseMs: Double
}

/// Writes one client account's results and their audit rows, as `owner`.
public final class ResultRecorder: Sendable {
    /// The account whose results these are (for metrics).
    public let clientAccountID: UUID
    let database: PostgresPool
    let store: DeliveryStore
    let owner: String
    let clock: any WallClock
    let logger: Logger
    /// How long, on `clock`, writes go on once the task is cancelled (after the grace period). Default 10 s.
    public let afterCancellationMs: Int64
    private let lost = Atomic<Int>(0)

    /// A recorder writing through `store` on `database` as `owner`, timed on `clock`.
    public init(clientAccountID: UUID, database: PostgresPool, store: DeliveryStore, owner: String, clock: any WallClock, logger: Logger,
                afterCancellationMs: Int64 = 10_000) {
        self.clientAccountID = clientAccountID
        self.database = database
        self.store = store
        self.owner = owner
        self.clock = clock
        self.logger = logger
        self.afterCancellationMs = afterCancellationMs
    }

    /// Results this recorder gave up on: the database could not take them before the deadline
    /// after cancellation, or rejected them for good. The daemon exits 1 when any are left.
    public var unwritten: Int { lost.load(ordering: .relaxed) }

    /// Reports `results` to the metrics and writes them, retrying while the database is away
    /// (back-off 0.2 s doubling to 5 s). The writes are shielded from cancellation
    /// (`PostgresShield`): results of attempts already made are written even at shutdown, after
    /// the grace period. Once the task is cancelled, the recorder keeps trying for
    /// `afterCancellationMs` more, then gives up, logs how many results it could not write and
    /// counts them in `unwritten`; their leases lapse and the records are rescued.
    ///
    /// An error retrying cannot fix (`PostgresError.isPermanent`) is not retried: the batch is
    /// written result by result so that everything else is stored, and a result that still
    /// fails is logged and left; its lease lapses once and the record is rescued.
    public func record(_ results: [DeliveryResult]) async -> Recording {
        Self.report(results, client: clientAccountID)
        return await write(results, splitOnPermanent: true)
    }

    private func write(_ results: [DeliveryResult], splitOnPermanent: Bool) async -> Recording {
        var failures = 0
        var deadline: Int64?
        while true {
            if deadline == nil, Task.isCancelled { deadline = clock.now() + afterCancellationMs }
            do {
                let started = ContinuousClock.now
                try await PostgresShield.run {
                    try await database.withConnection { connection in
                        _ = try await store.record(results, owner: owner, now: clock.now(), on: connection)
                    }
                }
                let took = Self.milliseconds(since: started)
                if failures > 0 { logger.notice("results recorded after the database came back", metadata: ["records": "\(results.count)"]) }
                return Recording(stored: true, failures: failures, databaseMs: took)
            } catch let error as PostgresError where error.isPermanent {
                failures += 1
                if splitOnPermanent && results.count > 1 {
                    var recording = Recording(stored: true, failures: failures, databaseMs: 0)
                    for result in results {
                        let one = await write([result], splitOnPermanent: false)
                        recording.stored = recording.stored && one.stored
                        recording.failures += one.failures
                        recording.databaseMs += one.databaseMs
                    }
                    return recording
                }
                logger.error("a result cannot be stored, and retrying cannot fix it; its lease will lapse and the record be rescued",
                             metadata: ["delivery": "\(results.first?.delivery.id ?? 0)", "error": "\(error)"])
                lost.add(results.count, ordering: .relaxed)
                return Recording(stored: false, failures: failures, databaseMs: 0)
            } catch {
                failures += 1
                if failures == 1 {
                    logger.error("cannot record results; retrying", metadata: ["records": "\(results.count)", "error": "\(error)"])
                }
                if deadline == nil, Task.isCancelled { deadline = clock.now() + afterCancellationMs }
                if let deadline, clock.now() >= deadline {
                    logger.error("results could not be written before the shutdown deadline; their records will be pushed again",
                                 metadata: ["records": "\(results.count)", "error": "\(error)"])
                    lost.add(results.count, ordering: .relaxed)
                    return Recording(stored: false, failures: failures, databaseMs: 0)
                }
                let wake = clock.now() + Int64(min(100 * (1 << min(failures, 6)), 5_000))
                if let deadline {
                    await clock.sleepIgnoringCancellation(until: min(wake, deadline))
                } else {
                    try? await clock.sleep(until: wake)
                }
            }
        }
    }

    /// Prometheus-style metrics (through swift-metrics): pushes by outcome, attempt latency,
    /// and push lead (how long before its window starts each accepted record landed).
    static func report(_ results: [DeliveryResult], client: UUID) {
        let account = client.uuidString.lowercased()
        for result in results {
            Counter(label: "callwindow_records_total", dimensions: [("client", account), ("outcome", result.outcome.rawValue)]).increment()
            for attempt in result.attempts {
                Counter(label: "callwindow_push_attempts_total", dimensions: [("client", account), ("outcome", attempt.outcome.rawValue)]).increment()
                if let latency = attempt.latencyMs {
                    Metrics.Timer(label: "callwindow_push_latency_seconds", dimensions: [("client", account)], preferredDisplayUnit: .seconds)
                        .recordMilliseconds(latency)
                }
            }
            if result.outcome == .accepted, let last = result.attempts.last {
                Recorder(label: "callwindow_push_lead_seconds", dimensions: [("client", account)])
                    .record(Double(result.delivery.startsAt - last.at) / 1000)
                if last.at > result.delivery.deadline {
                    Counter(label: "callwindow_late_records_total", dimensions: [("client", account)]).increment()
                }
            }
        }
    }

    /// Real time since `start`, in ms.
    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1_000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
