public import CallRecordAPI

/// The final outcome of one record.
public enum RecordOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The API accepted it.
    case accepted
    /// The API refused it for good.
    case rejected(reason: String)
    /// Its `ends_at` passed (or would pass) before it could be accepted; `lastReason` says why.
    case expired(lastReason: String)
    /// The pool stopped before the record was settled (its `send` was cancelled): no answer
    /// says it was accepted, so the owner puts it back or ends it. `lastReason` says what its
    /// last attempt gave, "not sent" when none was made.
    case unsent(lastReason: String)
    /// The owner's `SendAdmission` withdrew it before an attempt, for `reason` (its campaign was
    /// paused, its receiver removed, …); no attempt after the withdrawal was made.
    case withdrawn(reason: String)
    /// The pool had no token to send it with and could not get one soon (the mint budget used
    /// up, every token of the account held elsewhere): it is handed back unsent, to be queued
    /// again no earlier than `retryAt`, so that an instance with tokens can send it.
    case returned(reason: String, retryAt: Int64)

    public var description: String {
        switch self {
        case .accepted: "accepted"
        case .rejected(let reason): "rejected: \(reason)"
        case .expired(let reason): "expired: \(reason)"
        case .unsent(let reason): "unsent: \(reason)"
        case .withdrawn(let reason): "withdrawn: \(reason)"
        case .returned(let reason, _): "returned: \(reason)"
        }
    }

    /// `accepted`, `rejected`, `expired`, `unsent`, `withdrawn` or `returned`.
    public var kind: String {
        switch self {
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .expired: "expired"
        case .unsent: "unsent"
        case .withdrawn: "withdrawn"
        case .returned: "returned"
        }
    }
}
