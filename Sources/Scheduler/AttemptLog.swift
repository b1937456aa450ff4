// What a batch's sends reported, attempt by attempt, and how many of its records the API has
// settled: the claim loop reads the count to decide whether there is room for another batch.

import CallRecordAPI
import Store
import Synchronization
import TokenPool

/// A count shared between the claim loop and the batches it sent.
final class SharedCount: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { count.load(ordering: .relaxed) }

    func add(_ delta: Int) { count.add(delta, ordering: .relaxed) }
}

/// Collects the pool's attempt reports, then splits them by record.
final class AttemptLog: Sendable {
    private let attempts = Mutex<(all: [PushAttempt], settled: Int)>(([], 0))
    private let unsettled: SharedCount

    init(unsettled: SharedCount) {
        self.unsettled = unsettled
    }

    /// Records the API accepted or rejected so far (final answers).
    var settled: Int { attempts.withLock { $0.settled } }

    func append(_ attempt: PushAttempt) {
        // A polled batch settles only the records its status decided.
        let final = Self.outcomes(of: attempt).filter { Self.isFinal($0) }.count
        attempts.withLock {
            $0.all.append(attempt)
            $0.settled += final
        }
        if final > 0 { unsettled.add(-final) }
    }

    /// Each record's outcome of `attempt`, in the order of its `recordIndices`.
    static func outcomes(of attempt: PushAttempt) -> [PushOutcome] {
        attempt.recordOutcomes ?? Array(repeating: attempt.outcome, count: attempt.recordIndices.count)
    }

    static func isFinal(_ outcome: PushOutcome) -> Bool {
        switch outcome {
        case .accepted, .rejected: true
        default: false
        }
    }

    /// The audit word of an HTTP attempt's outcome.
    static func auditOutcome(_ outcome: PushOutcome) -> AuditOutcome {
        switch outcome {
        case .accepted: .accepted
        case .rejected: .rejected
        case .rateLimited: .rateLimited
        case .unauthorized: .unauthorized
        case .transient: .transient
        }
    }

    func byRecord() -> [Int: [DeliveryResult.Attempt]] {
        var map: [Int: [DeliveryResult.Attempt]] = [:]
        for attempt in attempts.withLock({ $0.all }).sorted(by: { $0.startedAt < $1.startedAt }) {
            for (index, outcome) in zip(attempt.recordIndices, Self.outcomes(of: attempt)) {
                let reason: String? = switch outcome {
                case .rejected(let reason), .transient(let reason): reason
                default: nil
                }
                map[index, default: []].append(DeliveryResult.Attempt(
                    at: attempt.startedAt, tokenFingerprint: attempt.tokenFingerprint, httpStatus: attempt.httpStatus,
                    latencyMs: Int(attempt.latencyMs), outcome: AttemptLog.auditOutcome(outcome), reason: reason))
            }
        }
        return map
    }
}
