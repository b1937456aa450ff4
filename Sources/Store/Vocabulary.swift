/// The words the schema stores, as types: a state or outcome is compared as an enum case, never
/// as a string. Raw values are exactly what the columns hold (their CHECK constraints list them).

/// `callwindow.windows.state`.
public enum WindowState: String, Sendable, Hashable, CaseIterable {
    /// Planned, not yet turned into deliveries; re-planning may still move or remove it.
    case planned
    /// Its deliveries exist (the queue holds them).
    case materialized
    /// Its campaign was cancelled, or re-planning no longer wants it.
    case cancelled
    /// It ended without being materialised.
    case expired
}

/// `callwindow.deliveries.state`.
public enum DeliveryState: String, Sendable, Hashable, CaseIterable {
    /// Waiting in the queue (for its push time, or a retry).
    case pending
    /// Claimed by a dispatcher under a lease.
    case inFlight = "in_flight"
    /// The API accepted it.
    case accepted
    /// Refused for good (by validation or the API).
    case rejected
    /// Its `ends_at` passed before it was accepted.
    case expired
    /// Its campaign, window or record was withdrawn.
    case cancelled
}

/// The outcome word of a delivery's result (`callwindow.deliveries.outcome`, the final audit row).
public enum ResultOutcome: String, Sendable, Hashable, CaseIterable {
    /// The API accepted it.
    case accepted
    /// The API refused it for good.
    case rejected
    /// Validation refused it before any request (never sent).
    case invalid
    /// Its `ends_at` passed before it could be accepted.
    case expired
    /// The process stopped before it was settled: back to the queue as it was.
    case released
}

/// The outcome word of one audit row (`callwindow.push_attempts.outcome`): what an HTTP attempt
/// gave, or, for a result reached without a request, the result's own outcome.
public enum AuditOutcome: String, Sendable, Hashable, CaseIterable {
    /// The API accepted the record.
    case accepted
    /// The API refused the record for good.
    case rejected
    /// HTTP 429.
    case rateLimited = "rate_limited"
    /// HTTP 401 (revoked or expired token).
    case unauthorized
    /// No final answer: 5xx, reset, timeout; retried.
    case transient
    /// Refused by validation, never sent.
    case invalid
    /// Its `ends_at` passed before it could be accepted.
    case expired
    /// Put back in the queue when the process stopped.
    case released

    /// The audit row of a result that had no HTTP attempt.
    public init(_ result: ResultOutcome) {
        switch result {
        case .accepted: self = .accepted
        case .rejected: self = .rejected
        case .invalid: self = .invalid
        case .expired: self = .expired
        case .released: self = .released
        }
    }
}
