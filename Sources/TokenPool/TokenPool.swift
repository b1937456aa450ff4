// Design note — the async shell around `TokenPoolStateMachine`.
//
// `TokenPool` owns one client account's tokens in this process. The state machine decides
// (which token, when, what to acquire or drop); the shell does the I/O it asks for:
//
// - `send(_:onAttempt:)` takes a batch of due records and returns one final `RecordOutcome` per
//   record, in order. Inside, one dispatcher loop asks the machine for grants, starts each push
//   as a child task, and sleeps on the injected clock until the next grant, retry or answer —
//   so the whole call is structured: when it returns, nothing it started is still running.
//   Every attempt is reported through `onAttempt` (for the audit trail): token fingerprint,
//   HTTP status, outcome, start instant and latency.
// - Token acquisition (lease a stored token, else mint within the shared budget), refresh,
//   lease renewal and drops run in `maintain()`, which the dispatcher calls when it has no token
//   or at least every `maintenanceIntervalMs`, and which `run()` calls periodically while the
//   daemon idles (so leases stay renewed and refreshes happen between batches).
// - `shutdown()` releases every lease so another instance can take the tokens over at once.
//
// Secrets: a token's secret lives only in `secrets` (memory) and, sealed, in the store; logs,
// attempts and errors carry fingerprints only.

public import CallRecordAPI
import Foundation
public import Logging
public import Planning
public import Ledger
import Metrics
import Synchronization

/// A client account's token pool in this process: leases or mints tokens, paces each at its
/// limit, adapts to 429s, retries, refreshes, and pushes records (see the design notes).
public final class TokenPool: Sendable {
    /// Who the pool acts for, with the key it mints with now (see `useKey(_:)`).
    public var configuration: TokenPoolConfiguration {
        var configuration = base
        configuration.key = mintingKey.withLock { $0 }
        return configuration
    }
    /// The configuration as created (its key is `mintingKey`'s first value).
    let base: TokenPoolConfiguration
    private let mintingKey: Mutex<APIKey>
    /// Its tuning.
    public let options: TokenPoolOptions
    /// The most often `maintain()` runs while records are being sent. Default 1,000 ms.
    public let maintenanceIntervalMs: Int64
    /// A record is attempted only on an admission check at most this old (ms).
    public static let admissionMaxAgeMs: Int64 = 1_000
    let store: any TokenLedger
    let api: APIClient
    let clock: any WallClock
    let logger: Logger
    let budget: MintBudget
    private let retry: RetryPolicy
    /// The process's requests in flight, shared with its other pools (nil: this pool's
    /// `options.maxInFlight` alone).
    let share: InFlightShare?

    /// Everything mutable: the machine, and the secrets it refers to by fingerprint.
    struct State {
        var machine: TokenPoolStateMachine
        var secrets: [String: BearerToken] = [:]
        var jitter: JitterSource
        /// `send` calls under way (the pool is counted in `share` while any is).
        var sends = 0
    }

    let state: Mutex<State>

    /// Creates a pool; nothing is leased or minted until records are sent or `run()` starts.
    /// Throws when `options` cannot work (e.g. `maxTokens` above what the mint budget sustains).
    public init(
        configuration: TokenPoolConfiguration,
        options: TokenPoolOptions = TokenPoolOptions(),
        ledger store: any TokenLedger,
        api: APIClient,
        clock: any WallClock,
        logger: Logger = Logger(label: "callwindow.tokenpool"),
        jitterSeed: UInt64 = UInt64.random(in: 0...UInt64.max),
        maintenanceIntervalMs: Int64 = 1_000,
        share: InFlightShare? = nil
    ) throws(TokenPoolError) {
        try options.validate()
        guard api.options.connectTimeoutMs + api.options.requestTimeoutMs <= options.requestTimeoutMs else {
            throw TokenPoolError(.invalidOptions, """
                the API client may take \(api.options.connectTimeoutMs + api.options.requestTimeoutMs) ms per request \
                (connect + read timeout) but the pool assumes at most \(options.requestTimeoutMs) ms: a request could \
                outlive its token's lease; lower the client's timeouts or raise the pool's request timeout
                """)
        }
        base = configuration
        mintingKey = Mutex(configuration.key)
        self.options = options
        self.store = store
        self.api = api
        self.clock = clock
        self.logger = logger
        self.maintenanceIntervalMs = maintenanceIntervalMs
        self.share = share
        retry = RetryPolicy(baseMs: options.retryBaseMs, maxMs: options.retryMaxMs)
        budget = MintBudget(budget: options.mintBudget, windowMs: options.mintWindowMs)
        state = Mutex(State(machine: TokenPoolStateMachine(options: options), jitter: JitterSource(seed: jitterSeed)))
    }

    /// The key pair new tokens are minted with: the configuration's, until `useKey(_:)`.
    public var key: APIKey { mintingKey.withLock { $0 } }

    /// Mints every later token with `key` (an account's API key rotated by a reload). The tokens
    /// held or stored stay in use until they expire or are refreshed (a refresh mints with the
    /// new key): replacing them would spend the mint budget, and a token stays valid when the
    /// key that minted it is replaced; one the API revokes (401) is dropped and replaced as usual.
    public func useKey(_ key: APIKey) {
        mintingKey.withLock { $0 = key }
    }

    /// Fingerprints of the tokens held now.
    public var fingerprints: [String] {
        state.withLock { $0.machine.tokens.keys.sorted() }
    }

    /// Requests in flight now.
    public var inFlight: Int {
        state.withLock { $0.machine.inFlight }
    }

    /// Records per second the tokens held now can send (0 without a usable token, unbounded
    /// with the limits off): the owner claims no more than that can send in time.
    public var capacity: Double {
        let perRequest = base.transport == .batch ? 500 : 1
        return state.withLock { $0.machine.capacity(now: clock.now(), recordsPerRequest: perRequest) }
    }

    /// Whether the pool holds fewer usable tokens than it may (`maxTokens`): whether a backlog
    /// can still make it grow (see `noteBacklog`).
    public var mayGrow: Bool {
        state.withLock { $0.machine.mayGrow(now: clock.now()) }
    }

    /// The earliest instant the pool may acquire a token again (the mint budget's next mint, a
    /// lease being watched, a retry after an error); in the past when it may now.
    public var acquireBlockedUntil: Int64 {
        state.withLock { $0.machine.acquireBlockedUntil }
    }

    /// Whether the pool is doing I/O now: a request in flight, housekeeping or an acquisition.
    /// A simulation moves its clock only while this is false.
    public var isBusy: Bool {
        state.withLock { $0.machine.inFlight > 0 || $0.machine.maintaining || $0.machine.acquiring }
    }

    // MARK: - Lifecycle

    /// Keeps the pool's tokens healthy while the daemon runs: renews leases, refreshes tokens
    /// before they expire, drops lapsed ones. Returns when cancelled; then call `shutdown()`.
    public func run() async {
        while !Task.isCancelled {
            await maintain(queued: nil)
            let now = clock.now()
            // Holding nothing and asked for nothing, there is nothing to renew or refresh: an idle
            // account's pool wakes once a minute (work that comes asks for tokens itself).
            let idle = state.withLock { $0.machine.tokens.isEmpty && $0.machine.demand == 0 }
            var wake = now + (idle ? Self.idleWakeMs : min(maintenanceIntervalMs, options.leaseMs / 5))
            if let due = state.withLock({ $0.machine.nextTickDue(now: now) }) { wake = min(wake, max(due, now + 1)) }
            do { try await clock.sleep(until: wake) } catch { return }
        }
    }

    /// How often `run()` looks at a pool that holds no token and has no demand, in ms.
    public static let idleWakeMs: Int64 = 60_000

    /// Releases every lease this pool holds (tokens stay stored for a restart or another instance).
    public func shutdown() async {
        let held: [String] = state.withLock { state in
            state.secrets = [:]
            return state.machine.close()
        }
        for fingerprint in held {
            do {
                try await release(fingerprint)
            } catch {
                logger.warning("could not release the lease", metadata: ["token": "\(fingerprint)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Maintenance

    /// Tells the pool how many records wait beyond those it was handed (the caller's queue), so
    /// it grows to the work ahead, not only to the batch at hand. 0 when nothing more waits.
    public func noteBacklog(_ records: Int) {
        state.withLock { $0.machine.backlogChanged(records) }
    }

    /// One round of token housekeeping at the clock's now: renew leases that are due, then do what
    /// the state machine asks (acquire, refresh, drop). `queued` is the records the sends under way
    /// still hold (`nil`: keep the last known). Never throws: database and API failures are logged,
    /// and tokens whose lease cannot be renewed simply stop being used when it runs out.
    public func maintain(queued: Int? = nil) async {
        guard state.withLock({ $0.machine.beginMaintenance(sending: queued) }) else {
            logger.debug("housekeeping skipped: a round is under way or the pool is closed", metadata: ["client": "\(base.clientAccountID.uuidString.lowercased())"])
            return
        }
        defer { state.withLock { $0.machine.endMaintenance() } }

        let now = clock.now()
        let renew = state.withLock { $0.machine.leasesToRenew(now: now) }
        if !renew.isEmpty {
            do {
                let renewed = try await store.renew(
                    clientAccountID: base.clientAccountID, fingerprints: renew,
                    owner: base.instance, now: now, leaseMs: options.leaseMs
                )
                let lost = state.withLock { state in
                    let lost = state.machine.leasesRenewed(renewed, of: renew, now: now)
                    for fingerprint in lost { state.secrets[fingerprint] = nil }
                    return lost
                }
                for fingerprint in lost {
                    logger.warning("lease lost; the token is no longer used", metadata: ["token": "\(fingerprint)"])
                }
            } catch where Task.isCancelled {
                // A send's maintenance round ended with its send: the housekeeping loop (`run`)
                // renews at its next turn, well within the lease. Nothing failed.
                logger.debug("lease renewal cancelled with its send", metadata: ["tokens": "\(renew.count)"])
            } catch {
                logger.warning("lease renewal failed; tokens stop being used when their leases run out", metadata: ["error": "\(error)"])
            }
        }

        // While the demand justifies another token and one was just added, ask again: the pool
        // grows to a large backlog in one round instead of one token per maintenance interval.
        for _ in 0..<max(1, options.maxTokens) {
            let (actions, demand, blockedUntil, holdsNone) = state.withLock { state in
                (state.machine.tick(now: clock.now()), state.machine.demand, state.machine.acquireBlockedUntil, state.machine.tokens.isEmpty)
            }
            if actions.isEmpty, demand > 0, holdsNone {
                logger.debug("no token and none acquired this round", metadata: [
                    "client": "\(base.clientAccountID.uuidString.lowercased())", "demand": "\(demand)", "blocked_until": "\(blockedUntil)",
                ])
            }
            var grew = false
            for action in actions {
                switch action {
                case .drop(let fingerprint, let reason):
                    await drop(fingerprint, reason: reason, revoked: false)
                case .acquire:
                    if await acquire(refreshOf: nil) { grew = true }
                case .refresh(let fingerprint):
                    await acquire(refreshOf: fingerprint)
                }
            }
            if !grew || state.withLock({ $0.machine.closed }) { break }
        }
    }

    // MARK: - Sending

    enum Event: Sendable {
        /// A push was answered (the pacer already knows); per-record outcomes to decide on.
        case answered(results: [(index: Int, outcome: PushOutcome)], attempt: PushAttempt)
        case timer
        case maintained
    }

    /// Pushes `records` (each due now) and returns one final outcome per record, in order:
    /// accepted, rejected (final, with the API's reason), or expired (its `ends_at` passed before
    /// it could be accepted). Every HTTP attempt is reported to `onAttempt` as it completes.
    /// Records whose `ends_at` has passed are never sent. Cancellation stops granting new sends;
    /// unfinished records are returned as `unsent`. With an `admission`, no record is attempted
    /// unless the owner admitted it within the last `admissionMaxAgeMs`; the ones it withdraws
    /// are returned as `withdrawn`.
    public func send(
        _ records: [CallRecord], admission: (any SendAdmission)? = nil,
        onAttempt: @escaping @Sendable (PushAttempt) -> Void = { _ in }
    ) async -> [RecordOutcome] {
        var queue = SendQueue(
            endsAt: records.map(\.endsAt), batchSize: base.transport == .batch ? 500 : 1,
            checksAdmission: admission != nil, maintenanceIntervalMs: maintenanceIntervalMs, admissionMaxAgeMs: Self.admissionMaxAgeMs)
        let share = self.share
        if state.withLock({ state in
            state.sends += 1
            return state.sends == 1
        }) { share?.joined() }
        defer {
            if state.withLock({ state in
                state.sends -= 1
                return state.sends == 0
            }) { share?.left() }
        }
        let outcomes = await withTaskGroup(of: Event.self, returning: [RecordOutcome].self) { group in
            while true {
                let now = clock.now()
                let action = queue.next(
                    now: now, cancelled: Task.isCancelled, acquireBlockedUntil: { state.withLock { $0.machine.acquireBlockedUntil } }
                ) { at in
                    let cap = share?.perPool
                    return state.withLock { $0.machine.grant(now: at, cap: cap) }
                }
                switch action {
                case .finished(let outcomes):
                    group.cancelAll()
                    return outcomes
                case .again:
                    continue
                case .admit(let indices):
                    let check = await admission?.check(indices) ?? AdmissionCheck()
                    // Aged from when it read the owner's state: a check that queued for a
                    // connection for over a second is not stale on arrival (with 100 accounts'
                    // checks queued so, every answer was, and nothing was ever sent).
                    queue.admitted(indices, withdrawn: check.withdrawn, at: min(max(check.checkedAt ?? now, now), clock.now()))
                case .send(let indices, let fingerprint, let sendID, let grantedAt):
                    guard let token = state.withLock({ $0.secrets[fingerprint] }) else {
                        // Dropped between grant and use: give the grant back, the records to the queue.
                        _ = state.withLock { $0.machine.completed(fingerprint: fingerprint, sendID: sendID, outcome: .accepted, now: now) }
                        queue.returned(indices)
                        continue
                    }
                    let batch = indices.map { records[$0] }
                    group.addTask { [self] in
                        await self.attempt(batch, indices: indices, token: token, sendID: sendID, grantedAt: grantedAt)
                    }
                case .maintain(let queued):
                    group.addTask { [self] in
                        await self.maintain(queued: queued)
                        return .maintained
                    }
                case .sleep(let until):
                    let clock = self.clock
                    group.addTask {
                        try? await clock.sleep(until: until)
                        return .timer
                    }
                case .awaitEvent:
                    // Never empty here (a request, a timer or the housekeeping is out); if it were, the
                    // send ends rather than wait for nothing.
                    guard let event = await group.next() else { return queue.abandon() }
                    switch event {
                    case .timer:
                        queue.timerFired()
                    case .maintained:
                        queue.maintained()
                    case .answered(let results, let attempt):
                        onAttempt(attempt)
                        let decideAt = clock.now()
                        state.withLock { state in
                            queue.answered(results, at: decideAt) { outcome, failures, endsAt in
                                retry.decide(outcome: outcome, failures: failures, endsAt: endsAt, now: decideAt, jitter: &state.jitter)
                            }
                        }
                    }
                }
            }
        }
        // The demand this call brought is served: an idle pool does not grow.
        state.withLock { $0.machine.demandChanged(sending: 0) }
        return outcomes
    }
}
