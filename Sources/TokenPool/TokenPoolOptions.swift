public import CallRecordAPI

/// The tuning of a token pool; every value has the documented default.
public struct TokenPoolOptions: Sendable, Hashable {
    /// Requests one token may send per `windowMs`. Default 100 (real-time; batch: 60).
    public var requestsPerWindow: Int
    /// The rate-limit window in ms. Default 1,000 (real-time; batch: 60,000).
    public var windowMs: Int64
    /// Most tokens this instance leases for the client account (`tokens.max`). Default 4.
    public var maxTokens: Int
    /// A token is refreshed this long before it expires. Default 300,000 (5 min).
    public var refreshBeforeMs: Int64
    /// Lifetime of a minted token. Default 3,600,000 (60 min).
    public var tokenLifetimeMs: Int64
    /// Mints allowed in any `mintWindowMs`, shared by every instance. Default 10.
    public var mintBudget: Int
    /// The mint window. Default 1,800,000 (30 min).
    public var mintWindowMs: Int64
    /// Length of a token lease. Default 15,000.
    public var leaseMs: Int64
    /// The longest a request may take (the client's timeout); a token is not used when its lease
    /// or its life would end within this. Default 5,000.
    public var requestTimeoutMs: Int64
    /// Most requests in flight at once for this pool. Default 256.
    public var maxInFlight: Int
    /// Factor applied to a token's rate on a 429. Default 0.5.
    public var decreaseFactor: Double
    /// The lowest rate factor a 429 can bring. Default 0.1.
    public var minimumRateFactor: Double
    /// Rate factor regained per second without a 429. Default 0.1.
    public var recoveryPerSecond: Double
    /// First back-off of a transient failure. Default 200 ms.
    public var retryBaseMs: Int64
    /// Longest back-off. Default 30,000 ms.
    public var retryMaxMs: Int64
    /// `false` turns pacing off (the bench's `--no-limits`, against a sandbox that enforces
    /// nothing): requests go round-robin to the tokens, bounded only by `maxInFlight`. Default `true`.
    public var enforceLimits: Bool = true
    /// Demand that justifies another token: the pool grows while the queued records exceed what
    /// its tokens send in this many ms. Default 1,000.
    public var growthHorizonMs: Int64
    /// A pool that has sent nothing and been asked for nothing for this long releases its
    /// leases: its tokens stay stored and are leased again (without a mint) when work comes,
    /// so an idle account costs no lease renewals. Default 60,000.
    public var idleReleaseMs: Int64 = 60_000
    /// Requests per second per token for a batch's status polls, paced apart from the pushes:
    /// the status is a GET on the v2 records path, whose documented limit is the real-time one
    /// (100/s), not the batch push's 60/min. Default 100.
    public var statusRequestsPerSecond: Int = 100

    /// Real-time defaults (100 requests/s per token).
    public init(
        requestsPerWindow: Int = 100,
        windowMs: Int64 = 1_000,
        maxTokens: Int = 4,
        refreshBeforeMs: Int64 = 300_000,
        tokenLifetimeMs: Int64 = 3_600_000,
        mintBudget: Int = 10,
        mintWindowMs: Int64 = 1_800_000,
        leaseMs: Int64 = 15_000,
        requestTimeoutMs: Int64 = 5_000,
        maxInFlight: Int = 256,
        decreaseFactor: Double = 0.5,
        minimumRateFactor: Double = 0.1,
        recoveryPerSecond: Double = 0.1,
        retryBaseMs: Int64 = 200,
        retryMaxMs: Int64 = 30_000,
        growthHorizonMs: Int64 = 1_000
    ) {
        self.requestsPerWindow = requestsPerWindow
        self.windowMs = windowMs
        self.maxTokens = maxTokens
        self.refreshBeforeMs = refreshBeforeMs
        self.tokenLifetimeMs = tokenLifetimeMs
        self.mintBudget = mintBudget
        self.mintWindowMs = mintWindowMs
        self.leaseMs = leaseMs
        self.requestTimeoutMs = requestTimeoutMs
        self.maxInFlight = maxInFlight
        self.decreaseFactor = decreaseFactor
        self.minimumRateFactor = minimumRateFactor
        self.recoveryPerSecond = recoveryPerSecond
        self.retryBaseMs = retryBaseMs
        self.retryMaxMs = retryMaxMs
        self.growthHorizonMs = growthHorizonMs
    }

    /// Batch defaults: 60 requests per 60 s per token.
    public static func batch(maxTokens: Int = 2) -> TokenPoolOptions {
        TokenPoolOptions(requestsPerWindow: 60, windowMs: 60_000, maxTokens: maxTokens)
    }

    /// The most tokens the mint budget keeps valid in steady state: each token costs one mint
    /// per `tokenLifetimeMs − refreshBeforeMs`.
    public var sustainableTokens: Int {
        let perToken = tokenLifetimeMs - refreshBeforeMs
        guard perToken > 0, mintWindowMs > 0 else { return 0 }
        return Int((Int64(mintBudget) * perToken) / mintWindowMs)
    }

    /// Throws a `TokenPoolError` naming the option when the values cannot work together.
    public func validate() throws(TokenPoolError) {
        guard requestsPerWindow > 0, windowMs > 0 else {
            throw TokenPoolError(.invalidOptions, "the per-token rate must be positive (requests per window and window length)")
        }
        guard maxTokens >= 1 else {
            throw TokenPoolError(.invalidOptions, "tokens.max is \(maxTokens): it must be at least 1")
        }
        guard refreshBeforeMs >= 0, refreshBeforeMs < tokenLifetimeMs else {
            throw TokenPoolError(.invalidOptions, "tokens.refresh_before must be shorter than the token lifetime (\(tokenLifetimeMs / 1000) s)")
        }
        guard maxTokens <= sustainableTokens else {
            throw TokenPoolError(.invalidOptions, """
                tokens.max is \(maxTokens) but the mint budget (\(mintBudget) per \(mintWindowMs / 1000) s) keeps at most \
                \(sustainableTokens) tokens valid when each is re-minted every \((tokenLifetimeMs - refreshBeforeMs) / 1000) s: \
                lower tokens.max to \(sustainableTokens) or less
                """)
        }
        // A lease is renewed once a third of it has passed; a token is used only while its lease
        // outlives a request started now. With a request timeout above two thirds of the lease,
        // every token stops being usable before its renewal is due, and the pool mints others.
        guard leaseMs * 2 / 3 > requestTimeoutMs else {
            throw TokenPoolError(.invalidOptions, """
                tokens.lease (\(leaseMs) ms) must be more than 1.5 times the request timeout (\(requestTimeoutMs) ms): \
                a lease is renewed when a third of it has passed, and a token whose lease could lapse during a request is not used
                """)
        }
        guard maxInFlight >= 1 else {
            throw TokenPoolError(.invalidOptions, "the in-flight bound must be at least 1")
        }
        guard decreaseFactor > 0, decreaseFactor < 1, minimumRateFactor > 0, minimumRateFactor <= 1 else {
            throw TokenPoolError(.invalidOptions, "the 429 decrease factor and the minimum rate factor must be between 0 and 1")
        }
    }
}
