import Synchronization

/// The requests in flight one process allows across all its token pools (`tokens.max_in_flight`),
/// shared fairly: each pool with records to send may have `limit / pools sending` requests out
/// at once, and always at least one. Without it every account's pool could put the whole limit in
/// flight: 100 unpaced accounts asked for 25,600 requests of 64 HTTP connections, which queued in
/// the HTTP client past its connect timeout and failed, mints included.
///
/// With more pools sending than `limit`, each still has one request out, so the process has at
/// most `max(limit, pools sending)` in flight.
public final class InFlightShare: Sendable {
    /// The requests in flight the process allows (at least 1).
    public let limit: Int
    private let sending = Mutex(0)

    /// A share of `limit` requests in flight (at least 1).
    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Pools with records to send now.
    public var poolsSending: Int { sending.withLock { $0 } }

    /// The requests one sending pool may have out now.
    public var perPool: Int {
        let pools = sending.withLock { $0 }
        return max(1, limit / max(1, pools))
    }

    /// A pool started sending (its first send under way).
    public func joined() {
        sending.withLock { $0 += 1 }
    }

    /// A pool stopped sending (its last send ended).
    public func left() {
        sending.withLock { $0 = max(0, $0 - 1) }
    }
}
