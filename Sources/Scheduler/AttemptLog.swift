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
        let final: Int
        switch attempt.outcome {
        case .accepted, .rejected: final = attempt.recordIndices.count
        default: final = 0
        }
        attempts.withLock {
            $0.all.append(attempt)
            $0.settled += final
        }
        if final > 0 { unsettled.add(-final) }
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
            let reason: String? = switch attempt.outcome {
            case .rejected(let reason), .transient(let reason): reason
            default: nil
            }
            let entry = DeliveryResult.Attempt(
                at: attempt.startedAt, tokenFingerprint: attempt.tokenFingerprint, httpStatus: attempt.httpStatus,
                latencyMs: Int(attempt.latencyMs), outcome: AttemptLog.auditOutcome(attempt.outcome), reason: reason)
            for index in attempt.recordIndices { map[index, default: []].append(entry) }
        }
        return map
    }
}
