public import CallRecordAPI

/// What to do with a record after an attempt.
public enum RetryDecision: Sendable, Hashable {
    /// The record is done: `outcome` is final (accepted, rejected, or expired).
    case final(RecordOutcome)
    /// Try again, no earlier than `at` (epoch ms).
    case retry(at: Int64)
}

/// The retry rules: rejected is final, 429 and 401 retry at once (on a token that may send),
/// transient failures back off exponentially with jitter until the record's `ends_at` would pass.
public struct RetryPolicy: Sendable, Hashable {
    /// First back-off. Default 200 ms.
    public var baseMs: Int64
    /// Longest back-off. Default 30,000 ms.
    public var maxMs: Int64

    /// A policy with the given back-off bounds.
    public init(baseMs: Int64 = 200, maxMs: Int64 = 30_000) {
        self.baseMs = baseMs
        self.maxMs = maxMs
    }

    /// The back-off before attempt `failures + 1` after `failures` transient failures: "equal
    /// jitter" — half of min(max, base × 2^(failures−1)) plus a random share of the other half.
    public func backoff(failures: Int, jitter: inout JitterSource) -> Int64 {
        let exponent = min(max(failures - 1, 0), 30)
        let ceiling = min(Double(maxMs), Double(baseMs) * Double(Int64(1) << exponent))
        let half = ceiling / 2
        return Int64((half + half * jitter.nextUnit()).rounded(.down))
    }

    /// Decides after an attempt that ended with `outcome` at `now`; `failures` counts the
    /// transient failures of this record so far, including this one.
    public func decide(
        outcome: PushOutcome, failures: Int, endsAt: Int64, now: Int64, jitter: inout JitterSource
    ) -> RetryDecision {
        switch outcome {
        case .accepted:
            return .final(.accepted)
        case .rejected(let reason):
            return .final(.rejected(reason: reason))
        case .rateLimited(let retryAfterMs):
            let at = now + max(0, retryAfterMs ?? 0)
            return at < endsAt ? .retry(at: at) : .final(.expired(lastReason: outcome.description))
        case .unauthorized:
            return now < endsAt ? .retry(at: now) : .final(.expired(lastReason: outcome.description))
        case .transient:
            let at = now + backoff(failures: failures, jitter: &jitter)
            return at < endsAt ? .retry(at: at) : .final(.expired(lastReason: outcome.description))
        }
    }
}
