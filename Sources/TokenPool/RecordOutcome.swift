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

    public var description: String {
        switch self {
        case .accepted: "accepted"
        case .rejected(let reason): "rejected: \(reason)"
        case .expired(let reason): "expired: \(reason)"
        case .unsent(let reason): "unsent: \(reason)"
        case .withdrawn(let reason): "withdrawn: \(reason)"
        }
    }

    /// `accepted`, `rejected`, `expired`, `unsent` or `withdrawn`.
    public var kind: String {
        switch self {
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .expired: "expired"
        case .unsent: "unsent"
        case .withdrawn: "withdrawn"
        }
    }
}
