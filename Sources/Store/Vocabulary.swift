public import Planning

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
    /// Its receiver is on the account's do-not-contact list.
    case suppressed
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
    /// The process stopped before it was settled, or an admission check held it: back to the
    /// queue as it was.
    case released
    /// Withdrawn before its next attempt: its campaign was cancelled or deleted, or the record
    /// was removed from it.
    case cancelled
    /// Withdrawn before its next attempt: its receiver is on the do-not-contact list.
    case suppressed
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
    /// Put back in the queue when the process stopped, or held by an admission check.
    case released
    /// Its campaign was cancelled, or the record was removed from it.
    case cancelled
    /// Its receiver is on the do-not-contact list.
    case suppressed

    /// The audit row of a result that had no HTTP attempt.
    public init(_ result: ResultOutcome) {
        switch result {
        case .accepted: self = .accepted
        case .rejected: self = .rejected
        case .invalid: self = .invalid
        case .expired: self = .expired
        case .released: self = .released
        case .cancelled: self = .cancelled
        case .suppressed: self = .suppressed
        }
    }
}

/// Why a claimed record may not be attempted now, from the admission check that runs no more
/// than a second before each attempt (`DeliveryStore.withdrawals`).
public enum Withdrawal: Sendable, Hashable {
    /// Not now: back to the queue unchanged (its campaign is paused, or its label is not usable).
    case hold(reason: String)
    /// Never: it ends `cancelled` (its campaign was cancelled or deleted, or the record was
    /// removed from the campaign).
    case cancel(reason: String)
    /// Never: it ends `suppressed` (its receiver is on the account's do-not-contact list).
    case suppress(reason: String)

    /// The words the audit trail records.
    public var reason: String {
        switch self {
        case .hold(let reason), .cancel(let reason), .suppress(let reason): reason
        }
    }

    /// The rule, strictest first: a campaign gone ends the record; a claim lease now held by
    /// another instance lets it go (that instance owns it: this one may not attempt it, and its
    /// result would be fenced out anyway); a suppressed person, a record removed from its
    /// campaign or a campaign cancelled end it; a paused campaign or a label that is missing or
    /// static holds it. `status` is `nil` when the campaign no longer exists, `labelDynamic` when
    /// the label does not.
    public static func decide(status: CampaignStatus?, labelDynamic: Bool?, removed: Bool, suppressed: Bool, leaseHeld: Bool = true) -> Withdrawal? {
        guard let status else { return .cancel(reason: "the campaign was deleted") }
        if !leaseHeld { return .hold(reason: "the claim lease was lost: another instance holds the record") }
        if suppressed { return .suppress(reason: "the receiver is on the do-not-contact list") }
        if removed { return .cancel(reason: "the record was removed from the campaign") }
        switch status {
        case .cancelled: return .cancel(reason: "the campaign was cancelled")
        case .paused: return .hold(reason: "the campaign is paused")
        case .active: break
        }
        switch labelDynamic {
        case nil: return .hold(reason: "the campaign's label is not known for the account")
        case false?: return .hold(reason: "the campaign's label is static")
        case true?: return nil
        }
    }
}
