// Design note — the token pool's state machine.
//
// Pure: no I/O and no clock reads. Every event carries `now` (epoch ms) and returns what the
// async shell (`TokenPool`) must do. One instance serves one client account in one process.
//
// Token lifecycle (per fingerprint):
//
//     added(lease, expiry) ──► usable ──(refresh due: expiry − refreshBefore)──► refreshing
//        ▲                       │  │                                                │
//        │             401 ──────┘  └── lease lost / expiry − margin ──► dropped ◄───┘
//        └──── replacement (acquire: lease a stored token, else mint within the budget)
//
// Invariants:
// - A token is granted for a request only while `now + requestTimeout < leaseExpiresAt`
//   (the request ends before the lease could expire) and `now + requestTimeout < expiresAt`.
// - Per token, grants are paced by GCRA at interval W / limit with zero burst tolerance, and in
//   addition no grant happens at `t` while `limit` earlier sends of the token have a *safe
//   instant* in `(t − W, t]`. A send's safe instant is the instant its answer arrived (an upper
//   bound of the instant the server counted it), or +∞ while it is in flight. So the server's
//   sliding window `(t − W, t]` never holds more than `limit` requests of one token, whatever
//   the network delays, at start, after idle periods and across token changes.
// - A 429 halves the token's rate factor (not below `minimumRateFactor`); it recovers
//   additively (`recoveryPerSecond`) while no 429 comes. `Retry-After` blocks the token until then.
// - Mints are decided from the ledger's recent mint instants: at most `mintBudget` mints in any
//   `mintWindowMs`; when refused, the instant the next mint becomes possible is returned.

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
        guard leaseMs > requestTimeoutMs else {
            throw TokenPoolError(.invalidOptions, "tokens.lease (\(leaseMs) ms) must be longer than the request timeout (\(requestTimeoutMs) ms)")
        }
        guard maxInFlight >= 1 else {
            throw TokenPoolError(.invalidOptions, "the in-flight bound must be at least 1")
        }
        guard decreaseFactor > 0, decreaseFactor < 1, minimumRateFactor > 0, minimumRateFactor <= 1 else {
            throw TokenPoolError(.invalidOptions, "the 429 decrease factor and the minimum rate factor must be between 0 and 1")
        }
    }
}

/// A deterministic pseudo-random source for back-off jitter (SplitMix64), injectable in tests.
public struct JitterSource: Sendable {
    private var state: UInt64

    /// A source seeded with `seed`; the same seed gives the same jitter.
    public init(seed: UInt64) {
        state = seed
    }

    /// A value in `[0, 1)`.
    public mutating func nextUnit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(UInt64(1) << 53)
    }
}

/// The GCRA limiter of one token plus its sliding guard and its 429 adaptation.
public struct TokenPacer: Sendable {
    /// Requests allowed per window.
    public let limit: Int
    /// The window in ms.
    public let windowMs: Int64
    /// Current share of the nominal rate (1 = full rate), lowered by 429s.
    public private(set) var rateFactor: Double = 1
    /// GCRA's theoretical arrival time: the earliest instant of the next grant (ms, fractional).
    private var theoreticalArrival: Double = -.infinity
    /// Sends whose safe instant may still fall in a window: (safe instant, send id), sorted by
    /// safe instant; in-flight sends (`Int64.max`) at the end.
    private var recent: [(safe: Int64, id: UInt64)] = []
    private var nextSendID: UInt64 = 0
    /// No grant before this instant (Retry-After).
    private var blockedUntil: Int64 = .min
    private var lastAdjustment: Int64 = .min

    /// A pacer allowing `limit` requests in any window of `windowMs`.
    public init(limit: Int, windowMs: Int64) {
        self.limit = max(1, limit)
        self.windowMs = max(1, windowMs)
    }

    /// The nominal emission interval W / limit in ms.
    public var nominalIntervalMs: Double { Double(windowMs) / Double(limit) }

    /// The earliest instant (≥ `now`) a request may be granted, or `nil` while an in-flight
    /// request keeps the sliding guard closed (the answer will reopen it).
    public func earliestGrant(now: Int64) -> Int64? {
        var earliest = max(now, blockedUntil)
        if theoreticalArrival.isFinite {
            earliest = max(earliest, Int64(theoreticalArrival.rounded(.up)))
        }
        if recent.count >= limit {
            // The limit-th latest safe instant must have left the window (t − W, t].
            let pivot = recent[recent.count - limit].safe
            if pivot == .max { return nil }
            earliest = max(earliest, pivot + windowMs)
        }
        return earliest
    }

    /// Records a grant at `now` (which must be ≥ `earliestGrant(now:)`); returns the send's id
    /// for `completed(send:at:)`.
    public mutating func grant(now: Int64) -> UInt64 {
        recover(now: now)
        let interval = nominalIntervalMs / rateFactor
        // A grant less than one interval late (timer slack) keeps the schedule, so lateness is
        // not lost; after an idle period the schedule restarts at `now` (no burst). The sliding
        // guard, not GCRA, is what bounds every window.
        let late = Double(now) - theoreticalArrival
        theoreticalArrival = (late < interval ? theoreticalArrival : Double(now)) + interval
        nextSendID += 1
        prune(now: now)
        recent.append((safe: .max, id: nextSendID))
        return nextSendID
    }

    /// The answer of send `id` arrived at `now`: its safe instant becomes `now`.
    public mutating func completed(send id: UInt64, at now: Int64) {
        guard let index = recent.lastIndex(where: { $0.id == id }) else { return }
        recent.remove(at: index)
        // Insert in order; answers mostly arrive in order, so this scans from the end briefly.
        var position = recent.count
        while position > 0, recent[position - 1].safe > now {
            position -= 1
        }
        recent.insert((safe: now, id: id), at: position)
        prune(now: now)
    }

    /// Drops sends that can no longer be inside any window at or after `now`.
    private mutating func prune(now: Int64) {
        var drop = 0
        while drop < recent.count, recent[drop].safe != .max, recent[drop].safe <= now - windowMs {
            drop += 1
        }
        if drop > 0 { recent.removeFirst(drop) }
    }

    /// A 429 at `now`: multiplicative decrease, and a pause until `Retry-After` when given.
    public mutating func rateLimited(now: Int64, retryAfterMs: Int64?, decreaseFactor: Double, minimumFactor: Double) {
        recover(now: now)
        rateFactor = max(minimumFactor, rateFactor * decreaseFactor)
        lastAdjustment = now
        // The next grant waits at least one (slowed) interval from now.
        theoreticalArrival = max(theoreticalArrival, Double(now) + nominalIntervalMs / rateFactor)
        if let retryAfterMs, retryAfterMs > 0 {
            blockedUntil = max(blockedUntil, now + retryAfterMs)
        }
    }

    /// Additive recovery: `recoveryPerSecond` per second since the last adjustment.
    var recoveryPerSecond: Double = 0.1

    private mutating func recover(now: Int64) {
        guard rateFactor < 1, lastAdjustment != .min, now > lastAdjustment else {
            if rateFactor >= 1 { lastAdjustment = now }
            return
        }
        rateFactor = min(1, rateFactor + recoveryPerSecond * Double(now - lastAdjustment) / 1000)
        lastAdjustment = now
    }

    /// Requests in flight.
    public var inFlight: Int {
        var count = 0
        for entry in recent.reversed() {
            guard entry.safe == .max else { break }
            count += 1
        }
        return count
    }
}

/// What became of a mint decision.
public enum MintDecision: Sendable, Hashable {
    /// A mint may happen now (and must be recorded in the ledger in the same critical section).
    case allowed
    /// The budget is used up; the next mint becomes possible at `nextAt` (epoch ms).
    case refused(nextAt: Int64)
}

/// The rolling mint budget shared by every instance: at most `budget` mints in any window.
public struct MintBudget: Sendable, Hashable {
    /// Mints allowed per window. Default 10.
    public var budget: Int
    /// The window in ms. Default 1,800,000.
    public var windowMs: Int64

    /// A budget of `budget` mints per `windowMs`.
    public init(budget: Int = 10, windowMs: Int64 = 1_800_000) {
        self.budget = budget
        self.windowMs = windowMs
    }

    /// Decides from the ledger's mint instants (failed mints included) whether one more mint at
    /// `now` stays within the budget; a mint at `m` counts while `now < m + windowMs`, and so
    /// does a mint recorded at a later instant than `now` (another instance's clock may run ahead).
    public func decide(recentMints: [Int64], now: Int64) -> MintDecision {
        let inWindow = recentMints.filter { $0 > now - windowMs }.sorted()
        if inWindow.count < budget { return .allowed }
        // The (count − budget + 1)-th oldest must leave the window first.
        let leaving = inWindow[inWindow.count - budget]
        return .refused(nextAt: leaving + windowMs)
    }
}

/// What to do with a record after an attempt.
public enum RetryDecision: Sendable, Hashable {
    /// The record is done: `outcome` is final (accepted, rejected, or expired).
    case final(RecordOutcome)
    /// Try again, no earlier than `at` (epoch ms).
    case retry(at: Int64)
}

/// The final outcome of one record.
public enum RecordOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The API accepted it.
    case accepted
    /// The API refused it for good.
    case rejected(reason: String)
    /// Its `ends_at` passed (or would pass) before it could be accepted; `lastReason` says why.
    case expired(lastReason: String)

    public var description: String {
        switch self {
        case .accepted: "accepted"
        case .rejected(let reason): "rejected: \(reason)"
        case .expired(let reason): "expired: \(reason)"
        }
    }

    /// `accepted`, `rejected` or `expired`.
    public var kind: String {
        switch self {
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .expired: "expired"
        }
    }
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

/// The state of one client account's pool in one process: its tokens, their pacing, leases and
/// expiries, and what the shell must do next. See the design note at the top of this file.
public struct TokenPoolStateMachine: Sendable {
    /// One token the pool holds.
    public struct Token: Sendable {
        /// `TokenFingerprint.of(secret)`.
        public let fingerprint: String
        /// When the token stops being valid (epoch ms).
        public var expiresAt: Int64
        /// When this process's lease on it ends (epoch ms).
        public var leaseExpiresAt: Int64
        /// A replacement has been asked for (refresh due).
        public var refreshRequested = false
        /// Pacing and 429 adaptation.
        public var pacer: TokenPacer
    }

    /// Where a request may go.
    public enum Grant: Sendable, Hashable {
        /// Send now with this token; report the answer with `completed(…sendID…)`.
        case send(fingerprint: String, sendID: UInt64)
        /// No token may send before `at`; ask again then (or after an answer arrives).
        case wait(until: Int64)
        /// Every token's guard waits for an answer in flight, or the in-flight bound is reached.
        case waitForAnswer
        /// The pool holds no token that may be used: acquire one (`acquireNeeded`).
        case noToken
    }

    /// What the shell must do about tokens.
    public enum TokenAction: Sendable, Hashable {
        /// Lease a stored token or mint one (within the budget).
        case acquire
        /// Mint a replacement for `fingerprint`, which expires soon (refresh).
        case refresh(fingerprint: String)
        /// Stop using and release `fingerprint` (expired, lease about to lapse, or revoked).
        case drop(fingerprint: String, reason: String)
    }

    /// The options the pool runs with.
    public let options: TokenPoolOptions
    /// Tokens held, by fingerprint.
    public private(set) var tokens: [String: Token] = [:]
    /// Requests granted and not yet answered.
    public private(set) var inFlight = 0
    /// An acquisition (lease or mint) is under way.
    public private(set) var acquiring = false
    /// No acquisition before this instant (the mint budget refused one).
    public private(set) var acquireBlockedUntil: Int64 = .min
    private var roundRobin: UInt64 = 0

    /// A pool with no tokens yet; `options` should have passed `validate()`.
    public init(options: TokenPoolOptions) {
        self.options = options
    }

    /// Tokens usable for a request at `now`.
    public func usableTokens(now: Int64) -> [String] {
        tokens.values.filter { isUsable($0, now: now) }.map(\.fingerprint).sorted()
    }

    private func isUsable(_ token: Token, now: Int64) -> Bool {
        now + options.requestTimeoutMs < token.leaseExpiresAt && now + options.requestTimeoutMs < token.expiresAt
    }

    // MARK: Events

    /// A token was leased or minted and is now held until `leaseExpiresAt`.
    public mutating func tokenAdded(fingerprint: String, expiresAt: Int64, leaseExpiresAt: Int64, now: Int64) {
        var pacer = TokenPacer(limit: options.requestsPerWindow, windowMs: options.windowMs)
        pacer.recoveryPerSecond = options.recoveryPerSecond
        if let existing = tokens[fingerprint] {
            // The same token again (e.g. re-leased): keep its pacing history.
            pacer = existing.pacer
        }
        tokens[fingerprint] = Token(fingerprint: fingerprint, expiresAt: expiresAt, leaseExpiresAt: leaseExpiresAt, pacer: pacer)
        acquiring = false
    }

    /// The lease of `fingerprint` was renewed until `leaseExpiresAt`.
    public mutating func leaseRenewed(fingerprint: String, leaseExpiresAt: Int64) {
        tokens[fingerprint]?.leaseExpiresAt = leaseExpiresAt
    }

    /// `fingerprint` is no longer held (released, lease lost, revoked, expired).
    public mutating func tokenRemoved(fingerprint: String) {
        tokens[fingerprint] = nil
    }

    /// An acquisition finished without a token; with `retryAt` (the budget's next mint instant),
    /// no new acquisition is asked for before then.
    public mutating func acquireFailed(retryAt: Int64?, refreshOf fingerprint: String? = nil) {
        acquiring = false
        if let retryAt { acquireBlockedUntil = max(acquireBlockedUntil, retryAt) }
        if let fingerprint { tokens[fingerprint]?.refreshRequested = false }
    }

    /// The shell starts an acquisition (so it is not asked for twice).
    public mutating func acquireStarted() {
        acquiring = true
    }

    /// Picks the token free soonest for one request at `now`. A `.send` grant is recorded.
    public mutating func grant(now: Int64) -> Grant {
        if inFlight >= options.maxInFlight { return .waitForAnswer }
        if !options.enforceLimits {
            let usable = usableTokens(now: now)
            guard !usable.isEmpty else { return .noToken }
            roundRobin &+= 1
            inFlight += 1
            return .send(fingerprint: usable[Int(roundRobin % UInt64(usable.count))], sendID: 0)
        }
        // Soonest free first; among equals, tokens not being replaced (so an old token drains
        // while its replacement takes over), then the least busy, then by fingerprint.
        var best: (at: Int64, draining: Int, inFlight: Int, fingerprint: String)?
        var anyUsable = false
        for token in tokens.values where isUsable(token, now: now) {
            anyUsable = true
            guard let at = token.pacer.earliestGrant(now: now) else { continue }
            // The request must still end inside the lease and the token's life.
            guard at + options.requestTimeoutMs < token.leaseExpiresAt, at + options.requestTimeoutMs < token.expiresAt else { continue }
            let candidate = (at: at, draining: token.refreshRequested ? 1 : 0, inFlight: token.pacer.inFlight, fingerprint: token.fingerprint)
            if let current = best {
                if (candidate.at, candidate.draining, candidate.inFlight, candidate.fingerprint)
                    < (current.at, current.draining, current.inFlight, current.fingerprint) {
                    best = candidate
                }
            } else {
                best = candidate
            }
        }
        guard anyUsable else { return .noToken }
        guard let best else { return .waitForAnswer }
        if best.at > now { return .wait(until: best.at) }
        let sendID = tokens[best.fingerprint]!.pacer.grant(now: now)
        inFlight += 1
        return .send(fingerprint: best.fingerprint, sendID: sendID)
    }

    /// The answer (or its absence) of a granted send arrived at `now`. Returns a token action
    /// when the outcome asks for one (401: drop and replace).
    public mutating func completed(fingerprint: String, sendID: UInt64, outcome: PushOutcome, now: Int64) -> TokenAction? {
        inFlight = max(0, inFlight - 1)
        guard tokens[fingerprint] != nil else { return nil }
        if options.enforceLimits {
            tokens[fingerprint]!.pacer.completed(send: sendID, at: now)
        }
        switch outcome {
        case .rateLimited(let retryAfterMs):
            tokens[fingerprint]!.pacer.rateLimited(
                now: now, retryAfterMs: retryAfterMs,
                decreaseFactor: options.decreaseFactor, minimumFactor: options.minimumRateFactor
            )
            return nil
        case .unauthorized:
            tokens[fingerprint] = nil
            return .drop(fingerprint: fingerprint, reason: "the API answered 401 (revoked or expired)")
        default:
            return nil
        }
    }

    /// Housekeeping at `now`, given `queued` records waiting to be sent: tokens to drop (expired,
    /// lease about to lapse), refreshes that are due, and whether to acquire another token (none
    /// usable, or the queue exceeds what the tokens send within `growthHorizonMs`).
    public mutating func tick(now: Int64, queued: Int) -> [TokenAction] {
        var actions: [TokenAction] = []
        for token in tokens.values.sorted(by: { $0.fingerprint < $1.fingerprint }) {
            if now + options.requestTimeoutMs >= token.expiresAt {
                actions.append(.drop(fingerprint: token.fingerprint, reason: "the token expires"))
                continue
            }
            if now >= token.leaseExpiresAt {
                actions.append(.drop(fingerprint: token.fingerprint, reason: "the lease lapsed"))
                continue
            }
            if !token.refreshRequested, !acquiring, now >= acquireBlockedUntil, now >= token.expiresAt - options.refreshBeforeMs {
                tokens[token.fingerprint]?.refreshRequested = true
                acquiring = true
                actions.append(.refresh(fingerprint: token.fingerprint))
            }
        }
        for case .drop(let fingerprint, _) in actions {
            tokens[fingerprint] = nil
        }
        if !acquiring, now >= acquireBlockedUntil, queued > 0 {
            let usable = tokens.values.filter { isUsable($0, now: now) && !$0.refreshRequested }.count
            let perTokenInHorizon = Double(options.requestsPerWindow) * Double(options.growthHorizonMs) / Double(options.windowMs)
            let needed = usable == 0 || Double(queued) > Double(usable) * perTokenInHorizon
            if needed, usable < options.maxTokens {
                acquiring = true
                actions.append(.acquire)
            }
        }
        return actions
    }

    /// The earliest instant `tick` has something new to do: a refresh or expiry coming due.
    public func nextTickDue(now: Int64) -> Int64? {
        var due: Int64?
        for token in tokens.values {
            var at = token.expiresAt - options.requestTimeoutMs
            if !token.refreshRequested { at = min(at, token.expiresAt - options.refreshBeforeMs) }
            due = min(due ?? at, at)
        }
        return due
    }

    /// Lease renewals due at `now`: tokens whose lease has less than two thirds left.
    public func leasesToRenew(now: Int64) -> [String] {
        tokens.values.filter { $0.leaseExpiresAt - now < options.leaseMs * 2 / 3 }.map(\.fingerprint).sorted()
    }
}
