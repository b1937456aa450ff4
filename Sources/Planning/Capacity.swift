/// How records reach the API.
public enum Transport: String, Sendable, Codable, CaseIterable {
    /// Real-time v1 (the seed): one record per request.
    case v1
    /// Real-time v2: one record per request.
    case v2
    /// Batch v2: up to 500 records per request.
    case batch

    /// Whether one request carries one record.
    public var isRealTime: Bool { self != .batch }
}

/// The planned push rate of one client account's token pool:
/// R = tokens × per-token records/s × utilisation.
///
/// Utilisation below 1 leaves slack for retries and 429 back-off, so a plan made at R is met
/// by a pool that can actually go somewhat faster.
public struct Capacity: Sendable, Hashable {
    /// Tokens in the pool (each has its own rate limit).
    public var tokens: Int
    /// Which endpoint the records go through.
    public var transport: Transport
    /// Fraction of the hard limit planned for; default 0.8.
    public var utilisation: Double
    /// Real-time requests per second per token; default 100 (API.md).
    public var realTimeRequestsPerSecond: Double
    /// Batch requests per minute per token; default 60 (API.md).
    public var batchRequestsPerMinute: Double
    /// Records in one batch request; default 500 (API.md).
    public var recordsPerBatch: Int
    /// Time allowed on top of every window's records for getting going — minting a token,
    /// the first claim, a retry — so a push planned as late as possible still ends by its
    /// deadline. Default 0 (the daemon uses `scheduler.push_margin_seconds`).
    public var startupMs: Int64

    /// A pool of `tokens` tokens on `transport`; the per-token limits default to the real
    /// service's and can be changed for a differently configured sandbox.
    public init(
        tokens: Int,
        transport: Transport = .v1,
        utilisation: Double = 0.8,
        realTimeRequestsPerSecond: Double = 100,
        batchRequestsPerMinute: Double = 60,
        recordsPerBatch: Int = 500,
        startupMs: Int64 = 0
    ) {
        self.tokens = tokens
        self.transport = transport
        self.utilisation = utilisation
        self.realTimeRequestsPerSecond = realTimeRequestsPerSecond
        self.batchRequestsPerMinute = batchRequestsPerMinute
        self.recordsPerBatch = recordsPerBatch
        self.startupMs = max(0, startupMs)
    }

    /// Records per second one token may carry at the hard limit.
    public var recordsPerSecondPerToken: Double {
        switch transport {
        case .v1, .v2: realTimeRequestsPerSecond
        case .batch: batchRequestsPerMinute / 60 * Double(recordsPerBatch)
        }
    }

    /// R: the planned rate of the whole pool in records per second (0 when there are no tokens).
    public var recordsPerSecond: Double {
        max(0, Double(tokens) * recordsPerSecondPerToken * utilisation)
    }

    /// The same pool with a different number of tokens.
    public func with(tokens: Int) -> Capacity {
        var copy = self
        copy.tokens = tokens
        return copy
    }

    /// Milliseconds needed to push `records` at R, rounded up, plus the start-up allowance:
    /// ⌈records / R⌉ ms + `startupMs` (0 for no records). Saturates at 100 years when R is 0,
    /// so arithmetic on many windows cannot overflow.
    public func pushDuration(records: Int) -> Int64 {
        guard records > 0 else { return 0 }
        let rate = recordsPerSecond
        let cap: Int64 = 100 * 365 * 86_400_000
        guard rate > 0 else { return cap }
        // The relative nudge keeps float noise (240.00000000000003 records/s) from adding 1 ms.
        let milliseconds = (Double(records) * 1000 / rate * (1 - 1e-12)).rounded(.up) + Double(startupMs)
        return milliseconds >= Double(cap) ? cap : Int64(milliseconds)
    }
}
