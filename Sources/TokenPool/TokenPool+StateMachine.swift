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
        /// Pacing of the token's batch status polls (`grant(fingerprint:now:)`).
        public var statusPacer: TokenPacer
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
        /// The token the action is about (`nil` for `acquire`).
        public var fingerprint: String? {
            switch self {
            case .acquire: nil
            case .refresh(let fingerprint), .drop(let fingerprint, _): fingerprint
            }
        }

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
    /// The pool is closed (`close()`): it holds nothing and acquires nothing any more.
    public private(set) var closed = false
    /// A housekeeping round (`beginMaintenance`) is under way.
    public private(set) var maintaining = false
    /// Records waiting in the sends under way, as last reported with `demandChanged(sending:)`.
    public private(set) var sending = 0
    /// Records waiting beyond those handed to the pool (the owner's queue), from `backlogChanged`.
    public private(set) var backlog = 0
    private var roundRobin: UInt64 = 0
    /// The last instant the pool granted a send, gained a token or had demand.
    private var lastActiveAt: Int64 = .min
    /// Stored tokens leased elsewhere that the pool watches before minting, by fingerprint: the
    /// lease expiry first seen, and until when a live holder would have renewed it.
    private var awaitedLeases: [String: (expiry: Int64, observedUntil: Int64)] = [:]

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

    /// A token was leased or minted and is now held until `leaseExpiresAt`; `quietSince`, for a
    /// token another holder used, is the instant after which that holder sent nothing: no grant
    /// comes before one window past it. Returns `false` when the pool closed meanwhile: it does
    /// not take the token, and the shell releases its lease.
    @discardableResult
    public mutating func tokenAdded(
        fingerprint: String, expiresAt: Int64, leaseExpiresAt: Int64, quietSince: Int64? = nil, now: Int64
    ) -> Bool {
        acquiring = false
        if closed { return false }
        var pacer = TokenPacer(limit: options.requestsPerWindow, windowMs: options.windowMs)
        pacer.recoveryPerSecond = options.recoveryPerSecond
        if let existing = tokens[fingerprint] {
            // The same token again (e.g. re-leased): keep its pacing history.
            pacer = existing.pacer
        } else if let quietSince, options.enforceLimits {
            // Handed over by another holder: its sends may still be in the server's window.
            pacer.hold(until: quietSince + options.windowMs)
        }
        let statusPacer = tokens[fingerprint]?.statusPacer ?? TokenPacer(limit: options.statusRequestsPerSecond, windowMs: 1_000)
        tokens[fingerprint] = Token(fingerprint: fingerprint, expiresAt: expiresAt, leaseExpiresAt: leaseExpiresAt, pacer: pacer,
                                    statusPacer: statusPacer)
        lastActiveAt = max(lastActiveAt, now)
        return true
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

    /// No stored token was free at `now`; `elsewhere` are the valid ones other holders lease.
    /// Returns the instant to look again instead of minting, or `nil` to mint now.
    ///
    /// A holder may have died (a kill -9 and restart): rather than spend a scarce mint at once,
    /// the pool watches each such lease for `observationMs` (a live holder renews when a third of
    /// its lease has passed). A lease that moved has a live holder and is ignored from then on;
    /// one that stayed put is waited for until it lapses, then leased.
    public mutating func leasedElsewhere(
        _ elsewhere: [(fingerprint: String, leaseExpiresAt: Int64)], now: Int64, observationMs: Int64
    ) -> Int64? {
        var wake: Int64?
        for token in elsewhere {
            let until: Int64
            if let seen = awaitedLeases[token.fingerprint] {
                if seen.expiry != token.leaseExpiresAt { continue }  // renewed: its holder is alive
                until = now >= seen.observedUntil ? token.leaseExpiresAt : seen.observedUntil
            } else {
                until = min(now + observationMs, token.leaseExpiresAt)
                awaitedLeases[token.fingerprint] = (token.leaseExpiresAt, until)
            }
            wake = min(wake ?? until, until)
        }
        return wake
    }

    /// Whether to mint a token for growth (not a refresh) at `now`, when `elsewhere` valid tokens
    /// of the account are leased by other instances. The account's tokens, wherever they are
    /// held, are sized to the account's demand and capped at `maxTokens`: an instance that
    /// already holds a usable token mints another only while all of the account's tokens
    /// together send less than the demand (`sending + backlog`) within `growthHorizonMs`, so
    /// the first instance to see a backlog does not spend the whole mint budget on it. An
    /// instance without a usable token mints while the account is below `maxTokens`; `wanted`
    /// (warming the pool up) counts as demand for that many tokens. When
    /// refused, no acquisition is asked for during `growthRecheckMs`.
    public mutating func mayMint(elsewhere: Int, now: Int64, atLeast wanted: Int = 0) -> Bool {
        let mine = tokens.values.filter { isUsable($0, now: now) && !$0.refreshRequested }.count
        let account = mine + max(0, elsewhere)
        let perTokenInHorizon = Double(options.requestsPerWindow) * Double(options.growthHorizonMs) / Double(options.windowMs)
        let needed = max(wanted, Int((Double(demand) / perTokenInHorizon).rounded(.up)))
        let allowed = account < options.maxTokens && (mine == 0 || account < needed)
        if !allowed { acquireFailed(retryAt: now + Self.growthRecheckMs) }
        return allowed
    }

    /// The mint budget refused a mint at `now`; the next mint is possible at `nextMintAt`. The
    /// pool asks again no later than `growthRecheckMs` from now all the same: a stored token may
    /// be leased before then (its holder released it, or died and its lease lapsed). Returns the
    /// instant of the next acquisition.
    @discardableResult
    public mutating func mintRefused(nextMintAt: Int64, now: Int64, refreshOf fingerprint: String? = nil) -> Int64 {
        let retryAt = min(nextMintAt, now + Self.growthRecheckMs)
        acquireFailed(retryAt: retryAt, refreshOf: fingerprint)
        return retryAt
    }

    /// How long an instance refused a growth mint by `mayMint` waits before asking again, in ms.
    public static let growthRecheckMs: Int64 = 5_000

    /// Records per second the tokens usable at `now` can send (`recordsPerRequest` per request);
    /// 0 without a usable token, unbounded when limits are off. The owner claims no more than this
    /// can send in time.
    public func capacity(now: Int64, recordsPerRequest: Int) -> Double {
        let usable = tokens.values.filter { isUsable($0, now: now) }.count
        guard usable > 0 else { return 0 }
        guard options.enforceLimits else { return .infinity }
        return Double(usable) * Double(options.requestsPerWindow) * 1_000 / Double(options.windowMs) * Double(recordsPerRequest)
    }

    /// Whether the pool holds fewer usable tokens than `maxTokens` at `now`: only then can a
    /// backlog make it grow, so only then is the backlog worth counting.
    public func mayGrow(now: Int64) -> Bool {
        tokens.values.filter { isUsable($0, now: now) }.count < options.maxTokens
    }

    /// The shell starts an acquisition (so it is not asked for twice).
    public mutating func acquireStarted() {
        acquiring = true
    }

    /// How long the pool waits before acquiring again after an acquisition failed on an error
    /// (the database or the API away), in ms.
    public static let acquireRetryAfterErrorMs: Int64 = 5_000

    /// An acquisition failed on an error at `now`: retry after `acquireRetryAfterErrorMs`.
    /// Returns the instant of the next attempt.
    @discardableResult
    public mutating func acquireErrored(now: Int64, refreshOf fingerprint: String? = nil) -> Int64 {
        let retryAt = now + Self.acquireRetryAfterErrorMs
        acquireFailed(retryAt: retryAt, refreshOf: fingerprint)
        return retryAt
    }

    /// Starts an acquisition asked for outside `tick` (warming the pool up) at `now`, unless one
    /// is under way, the budget blocks it, or the pool is closed. Returns whether it started.
    public mutating func startAcquisition(now: Int64) -> Bool {
        if closed || acquiring || now < acquireBlockedUntil { return false }
        acquiring = true
        return true
    }

    // MARK: Demand, housekeeping and closing

    /// The sends under way hold `sending` records not yet finished (`nil`: unchanged); the pool
    /// grows to them and to the backlog. 0 when the send is over: an idle pool does not grow.
    public mutating func demandChanged(sending: Int?) {
        if let sending { self.sending = max(0, sending) }
    }

    /// `records` wait beyond those handed to the pool (the owner's queue); 0 when nothing more waits.
    public mutating func backlogChanged(_ records: Int) {
        backlog = max(0, records)
    }

    /// The demand housekeeping grows the pool to: the records being sent and the backlog.
    public var demand: Int { sending + backlog }

    /// A housekeeping round starts, with the sends' demand (`nil`: unchanged). Returns `false`
    /// (and changes nothing) while another round runs or once the pool is closed.
    public mutating func beginMaintenance(sending: Int?) -> Bool {
        if maintaining || closed { return false }
        maintaining = true
        demandChanged(sending: sending)
        return true
    }

    /// The housekeeping round begun with `beginMaintenance` ended.
    public mutating func endMaintenance() {
        maintaining = false
    }

    /// Renewing the leases of `asked` at `now` kept only `renewed`: those now last until
    /// `now + leaseMs`; the others are no longer held. Returns the fingerprints lost.
    public mutating func leasesRenewed(_ renewed: [String], of asked: [String], now: Int64) -> [String] {
        for fingerprint in renewed { leaseRenewed(fingerprint: fingerprint, leaseExpiresAt: now + options.leaseMs) }
        let lost = Set(asked).subtracting(renewed).sorted()
        for fingerprint in lost { tokenRemoved(fingerprint: fingerprint) }
        return lost
    }

    /// Closes the pool: it gives up every token and acquires none from now on. Returns the
    /// fingerprints whose leases the shell must release.
    public mutating func close() -> [String] {
        closed = true
        let held = tokens.keys.sorted()
        tokens = [:]
        return held
    }

    /// Picks the token free soonest for one request at `now`, with at most `cap` requests of the
    /// pool in flight besides `maxInFlight` (the pool's share of its process's, `InFlightShare`).
    /// A `.send` grant is recorded.
    public mutating func grant(now: Int64, cap: Int? = nil) -> Grant {
        if inFlight >= min(options.maxInFlight, max(1, cap ?? .max)) { return .waitForAnswer }
        if !options.enforceLimits {
            let usable = usableTokens(now: now)
            guard !usable.isEmpty else { return .noToken }
            roundRobin &+= 1
            inFlight += 1
            lastActiveAt = now
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
        lastActiveAt = now
        return .send(fingerprint: best.fingerprint, sendID: sendID)
    }

    /// A grant on `fingerprint` only, for a batch's status poll, which must use the token that
    /// pushed the batch: paced by the token's status pacer (`statusRequestsPerSecond`), apart from
    /// its pushes, and only while the token may be used. `.noToken` when it may not any more
    /// (dropped, lease or life too short for a request). Report its end with `statusCompleted`.
    public mutating func grant(fingerprint: String, now: Int64) -> Grant {
        guard let token = tokens[fingerprint], isUsable(token, now: now) else { return .noToken }
        guard options.enforceLimits else {
            inFlight += 1
            return .send(fingerprint: fingerprint, sendID: 0)
        }
        guard let at = token.statusPacer.earliestGrant(now: now) else { return .waitForAnswer }
        guard at + options.requestTimeoutMs < token.leaseExpiresAt, at + options.requestTimeoutMs < token.expiresAt else { return .noToken }
        if at > now { return .wait(until: at) }
        let sendID = tokens[fingerprint]!.statusPacer.grant(now: now)
        inFlight += 1
        return .send(fingerprint: fingerprint, sendID: sendID)
    }

    /// A status poll granted by `grant(fingerprint:now:)` ended at `now`.
    public mutating func statusCompleted(fingerprint: String, sendID: UInt64, answered: Bool, now: Int64) {
        inFlight = max(0, inFlight - 1)
        if options.enforceLimits { tokens[fingerprint]?.statusPacer.completed(send: sendID, at: now, answered: answered) }
    }

    /// A granted send ended at `now`, `answered` by the server or not (a timeout or reset, whose
    /// request the server may still count later). Returns a token action when the outcome asks
    /// for one (401: drop and replace).
    public mutating func completed(
        fingerprint: String, sendID: UInt64, outcome: PushOutcome, answered: Bool = true, now: Int64
    ) -> TokenAction? {
        inFlight = max(0, inFlight - 1)
        guard tokens[fingerprint] != nil else { return nil }
        if options.enforceLimits {
            tokens[fingerprint]!.pacer.completed(send: sendID, at: now, answered: answered)
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

    /// Housekeeping at `now` for the current `demand` (see `tick(now:queued:)`).
    public mutating func tick(now: Int64) -> [TokenAction] {
        tick(now: now, queued: demand)
    }

    /// Housekeeping at `now`, given `queued` records waiting to be sent: tokens to drop (expired,
    /// lease about to lapse, or every one once the pool has been idle for `idleReleaseMs`),
    /// refreshes that are due, and whether to acquire another token (none usable, or the queue
    /// exceeds what the tokens send within `growthHorizonMs`).
    public mutating func tick(now: Int64, queued: Int) -> [TokenAction] {
        var actions: [TokenAction] = []
        if queued > 0 || inFlight > 0 || acquiring { lastActiveAt = max(lastActiveAt, now) }
        if !tokens.isEmpty, lastActiveAt != .min, now - lastActiveAt >= options.idleReleaseMs {
            // Idle for `idleReleaseMs`: give the leases back (no renewals, no refresh mints);
            // the tokens stay stored, and the next work leases them again.
            for fingerprint in tokens.keys.sorted() {
                actions.append(.drop(fingerprint: fingerprint, reason: "idle: the lease is released, the token stays stored"))
            }
            tokens = [:]
            return actions
        }
        for token in tokens.values.sorted(by: { $0.fingerprint < $1.fingerprint }) {
            if now + options.requestTimeoutMs >= token.expiresAt {
                actions.append(.drop(fingerprint: token.fingerprint, reason: "the token expires"))
                continue
            }
            if now >= token.leaseExpiresAt {
                actions.append(.drop(fingerprint: token.fingerprint, reason: "the lease lapsed"))
                continue
            }
            if !token.refreshRequested, !acquiring, !closed, now >= acquireBlockedUntil, now >= token.expiresAt - options.refreshBeforeMs {
                tokens[token.fingerprint]?.refreshRequested = true
                acquiring = true
                actions.append(.refresh(fingerprint: token.fingerprint))
            }
        }
        for case .drop(let fingerprint, _) in actions {
            tokens[fingerprint] = nil
        }
        if !acquiring, !closed, now >= acquireBlockedUntil, queued > 0 {
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
