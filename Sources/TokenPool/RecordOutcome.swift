public import CallRecordAPI

/// The final outcome of one record.
public enum RecordOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The API accepted it.
    case accepted
    /// The API refused it for good.
    case rejected(reason: String)
    /// Its `ends_at` passed (or would pass) before it could be accepted; `lastReason` says why.
    case expired(lastReason: String)
    /// The pool stopped before the record was settled (its `send` was cancelled, or the owner
    /// withdrew it): no answer says it was accepted, so the owner puts it back or ends it.
    /// `lastReason` says what its last attempt gave, "not sent" when none was made.
    case unsent(lastReason: String)

    public var description: String {
        switch self {
        case .accepted: "accepted"
        case .rejected(let reason): "rejected: \(reason)"
        case .expired(let reason): "expired: \(reason)"
        case .unsent(let reason): "unsent: \(reason)"
        }
    }

    /// `accepted`, `rejected`, `expired` or `unsent`.
    public var kind: String {
        switch self {
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .expired: "expired"
        case .unsent: "unsent"
        }
    }
}
