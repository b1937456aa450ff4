// What a batch's sends reported, attempt by attempt, and how many of its records the API has
// settled: the claim loop reads the count to decide whether there is room for another batch.
// A record the API has just settled (accepted or rejected for good) is handed on at once with
// all its attempts, so that its result is written within the next result group rather than
// when the whole batch is over.

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

/// Collects the pool's attempt reports, split by record as they come.
final class AttemptLog: Sendable {
    /// A record the API settled: its position in the `send` input, its final answer and every
    /// attempt it took, oldest first.
    struct Settled: Sendable {
        var position: Int
        var outcome: PushOutcome
        var attempts: [DeliveryResult.Attempt]
    }

    private struct State {
        var byRecord: [Int: [DeliveryResult.Attempt]] = [:]
        var settled: Set<Int> = []
    }

    private let state = Mutex(State())
    private let unsettled: SharedCount
    private let onSettled: @Sendable ([Settled]) -> Void

    /// A log that counts settled records down in `unsettled` and hands each on to `onSettled`
    /// (called on the reporting task, so it must not block).
    init(unsettled: SharedCount, onSettled: @escaping @Sendable ([Settled]) -> Void = { _ in }) {
        self.unsettled = unsettled
        self.onSettled = onSettled
    }

    /// Records the API accepted or rejected so far (final answers).
    var settled: Int { state.withLock { $0.settled.count } }

    /// Positions of the records the API accepted or rejected so far.
    var settledPositions: Set<Int> { state.withLock { $0.settled } }

    func append(_ attempt: PushAttempt) {
        // A polled batch settles only the records its status decided.
        let outcomes = Self.outcomes(of: attempt)
        let settled: [Settled] = state.withLock { state in
            var settled: [Settled] = []
            for (index, outcome) in zip(attempt.recordIndices, outcomes) {
                let reason: String? = switch outcome {
                case .rejected(let reason), .transient(let reason): reason
                default: nil
                }
                state.byRecord[index, default: []].append(DeliveryResult.Attempt(
                    at: attempt.startedAt, tokenFingerprint: attempt.tokenFingerprint, httpStatus: attempt.httpStatus,
                    latencyMs: Int(attempt.latencyMs), outcome: AttemptLog.auditOutcome(outcome), reason: reason))
                if Self.isFinal(outcome), state.settled.insert(index).inserted {
                    settled.append(Settled(position: index, outcome: outcome, attempts: Self.ordered(state.byRecord[index] ?? [])))
                }
            }
            return settled
        }
        guard !settled.isEmpty else { return }
        unsettled.add(-settled.count)
        onSettled(settled)
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

    /// Every record's attempts so far, oldest first.
    func byRecord() -> [Int: [DeliveryResult.Attempt]] {
        state.withLock { $0.byRecord }.mapValues(Self.ordered)
    }

    private static func ordered(_ attempts: [DeliveryResult.Attempt]) -> [DeliveryResult.Attempt] {
        attempts.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }
}
