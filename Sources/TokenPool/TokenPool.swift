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
public import Foundation
public import Logging
public import Planning
public import Ledger
import Metrics
import Synchronization

/// Who the pool acts for: the client account, its API key, the transport, this process's name.
public struct TokenPoolConfiguration: Sendable {
    /// The client account whose records are pushed.
    public var clientAccountID: UUID
    /// The key pair that mints tokens (from the environment or a file, never the database).
    public var key: APIKey
    /// Real-time v1, v2, or batch.
    public var transport: Transport
    /// This process's lease-owner name (unique per process, e.g. host, pid and a random suffix).
    public var instance: String

    /// Creates a configuration.
    public init(clientAccountID: UUID, key: APIKey, transport: Transport = .v1, instance: String) {
        self.clientAccountID = clientAccountID
        self.key = key
        self.transport = transport
        self.instance = instance
    }
}

/// One HTTP attempt for one or more records (a batch attempt lists all its records).
public struct PushAttempt: Sendable, Hashable {
    /// Indices (in the `send` input) of the records this attempt carried.
    public var recordIndices: [Int]
    /// Fingerprint of the token used.
    public var tokenFingerprint: String
    /// HTTP status, `nil` when no answer came (reset, timeout).
    public var httpStatus: Int?
    /// What the attempt gave; for a batch, the request's outcome (each record's own result, read
    /// from the polled status, is its entry in the array `send` returns).
    public var outcome: PushOutcome
    /// When the request started (epoch ms).
    public var startedAt: Int64
    /// How long it took (ms).
    public var latencyMs: Int64
    /// The batch id, for batch attempts.
    public var batchID: UUID?
}

/// A client account's token pool in this process: leases or mints tokens, paces each at its
/// limit, adapts to 429s, retries, refreshes, and pushes records (see the design notes).
public final class TokenPool: Sendable {
    /// Who the pool acts for.
    public let configuration: TokenPoolConfiguration
    /// Its tuning.
    public let options: TokenPoolOptions
    /// The most often `maintain()` runs while records are being sent. Default 1,000 ms.
    public let maintenanceIntervalMs: Int64
    /// A record is attempted only on an admission check at most this old (ms).
    public static let admissionMaxAgeMs: Int64 = 1_000
    private let store: any TokenLedger
    private let api: APIClient
    private let clock: any WallClock
    private let logger: Logger
    private let retry: RetryPolicy
    private let budget: MintBudget

    private struct State {
        var machine: TokenPoolStateMachine
        var secrets: [String: BearerToken] = [:]
        var jitter: JitterSource
        var queued = 0
        /// Records waiting beyond those handed to `send` (the caller's queue), from `noteBacklog`.
        var backlog = 0
        var maintaining = false
        var closed = false
    }

    private let state: Mutex<State>

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
        maintenanceIntervalMs: Int64 = 1_000
    ) throws(TokenPoolError) {
        try options.validate()
        guard api.options.connectTimeoutMs + api.options.requestTimeoutMs <= options.requestTimeoutMs else {
            throw TokenPoolError(.invalidOptions, """
                the API client may take \(api.options.connectTimeoutMs + api.options.requestTimeoutMs) ms per request \
                (connect + read timeout) but the pool assumes at most \(options.requestTimeoutMs) ms: a request could \
                outlive its token's lease; lower the client's timeouts or raise the pool's request timeout
                """)
        }
        self.configuration = configuration
        self.options = options
        self.store = store
        self.api = api
        self.clock = clock
        self.logger = logger
        self.maintenanceIntervalMs = maintenanceIntervalMs
        retry = RetryPolicy(baseMs: options.retryBaseMs, maxMs: options.retryMaxMs)
        budget = MintBudget(budget: options.mintBudget, windowMs: options.mintWindowMs)
        state = Mutex(State(machine: TokenPoolStateMachine(options: options), jitter: JitterSource(seed: jitterSeed)))
    }

    /// Fingerprints of the tokens held now.
    public var fingerprints: [String] {
        state.withLock { $0.machine.tokens.keys.sorted() }
    }

    /// Requests in flight now.
    public var inFlight: Int {
        state.withLock { $0.machine.inFlight }
    }

    // MARK: - Lifecycle

    /// Keeps the pool's tokens healthy while the daemon runs: renews leases, refreshes tokens
    /// before they expire, drops lapsed ones. Returns when cancelled; then call `shutdown()`.
    public func run() async {
        while !Task.isCancelled {
            await maintain(queued: nil)
            let now = clock.now()
            var wake = now + min(maintenanceIntervalMs, options.leaseMs / 5)
            if let due = state.withLock({ $0.machine.nextTickDue(now: now) }) { wake = min(wake, max(due, now + 1)) }
            do { try await clock.sleep(until: wake) } catch { return }
        }
    }

    /// Brings the pool to `count` tokens (at most `maxTokens`) before the first send, leasing
    /// stored tokens first and minting within the budget; returns the number held. For the
    /// bench and for warm starts; `send` grows the pool on demand by itself.
    @discardableResult
    public func prepare(tokens count: Int) async -> Int {
        let target = min(count, options.maxTokens)
        var failures = 0
        while state.withLock({ $0.machine.tokens.count }) < target, failures < 3 {
            let now = clock.now()
            let blocked = state.withLock { state -> Bool in
                if state.machine.acquiring || now < state.machine.acquireBlockedUntil { return true }
                state.machine.acquireStarted()
                return false
            }
            if blocked { break }
            if await !acquire(refreshOf: nil) { failures += 1 }
        }
        return state.withLock { $0.machine.tokens.count }
    }

    /// Runs `body` with one of the pool's tokens, leasing or minting one (within the shared
    /// budget) if the pool holds none — for occasional calls such as listing labels. The token
    /// stays in the pool; its secret never leaves `body`.
    public func withToken<T: Sendable>(_ body: (BearerToken) async throws -> T) async throws -> T {
        if state.withLock({ $0.secrets.isEmpty }) { await prepare(tokens: 1) }
        guard let token = state.withLock({ $0.secrets.values.first }) else {
            throw TokenPoolError(.noToken, "no token could be leased or minted for client account \(configuration.clientAccountID) (mint budget used up, or the API refused the key)")
        }
        return try await body(token)
    }

    /// Releases every lease this pool holds (tokens stay stored for a restart or another instance).
    public func shutdown() async {
        let held: [String] = state.withLock { state in
            state.closed = true
            let held = Array(state.machine.tokens.keys)
            for fingerprint in held { state.machine.tokenRemoved(fingerprint: fingerprint) }
            state.secrets = [:]
            return held
        }
        for fingerprint in held {
            do {
                try await store.release(clientAccountID: configuration.clientAccountID, fingerprint: fingerprint, owner: configuration.instance)
            } catch {
                logger.warning("could not release the lease", metadata: ["token": "\(fingerprint)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Maintenance

    /// Tells the pool how many records wait beyond those it was handed (the caller's queue), so
    /// it grows to the work ahead, not only to the batch at hand. 0 when nothing more waits.
    public func noteBacklog(_ records: Int) {
        state.withLock { $0.backlog = max(0, records) }
    }

    /// One round of token housekeeping at the clock's now: renew leases that are due, then do what
    /// the state machine asks (acquire, refresh, drop). `queued` is the demand (`nil`: keep the
    /// last known). Never throws: database and API failures are logged, and tokens whose lease
    /// cannot be renewed simply stop being used when it runs out.
    public func maintain(queued: Int? = nil) async {
        let start: Bool = state.withLock { state in
            if state.maintaining || state.closed { return false }
            state.maintaining = true
            if let queued { state.queued = queued }
            return true
        }
        guard start else { return }
        defer { state.withLock { $0.maintaining = false } }

        let now = clock.now()
        let renew = state.withLock { $0.machine.leasesToRenew(now: now) }
        if !renew.isEmpty {
            do {
                let renewed = try await store.renew(
                    clientAccountID: configuration.clientAccountID, fingerprints: renew,
                    owner: configuration.instance, now: now, leaseMs: options.leaseMs
                )
                state.withLock { state in
                    for fingerprint in renewed { state.machine.leaseRenewed(fingerprint: fingerprint, leaseExpiresAt: now + options.leaseMs) }
                }
                for lost in Set(renew).subtracting(renewed) {
                    logger.warning("lease lost; the token is no longer used", metadata: ["token": "\(lost)"])
                    state.withLock { state in
                        state.machine.tokenRemoved(fingerprint: lost)
                        state.secrets[lost] = nil
                    }
                }
            } catch {
                logger.warning("lease renewal failed; tokens stop being used when their leases run out", metadata: ["error": "\(error)"])
            }
        }

        // While the demand justifies another token and one was just added, ask again: the pool
        // grows to a large backlog in one round instead of one token per maintenance interval.
        for _ in 0..<max(1, options.maxTokens) {
            let actions = state.withLock { $0.machine.tick(now: clock.now(), queued: $0.queued + $0.backlog) }
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
            if !grew || state.withLock({ $0.closed }) { break }
        }
    }

    private func drop(_ fingerprint: String, reason: String, revoked: Bool) async {
        logger.info("token dropped", metadata: ["token": "\(fingerprint)", "reason": "\(reason)"])
        state.withLock { state in
            state.machine.tokenRemoved(fingerprint: fingerprint)
            state.secrets[fingerprint] = nil
        }
        do {
            if revoked {
                try await store.revoke(clientAccountID: configuration.clientAccountID, fingerprint: fingerprint, now: clock.now())
            } else {
                try await store.release(clientAccountID: configuration.clientAccountID, fingerprint: fingerprint, owner: configuration.instance)
            }
        } catch {
            logger.warning("could not update the dropped token in the store", metadata: ["token": "\(fingerprint)", "error": "\(error)"])
        }
    }

    /// Leases a stored token, else mints one within the shared budget. The state machine's
    /// `acquiring` flag is set by the caller (tick or prepare); this clears it.
    @discardableResult
    private func acquire(refreshOf old: String?) async -> Bool {
        let id = configuration.clientAccountID
        let owner = configuration.instance
        var now = clock.now()
        do {
            let held = state.withLock { Array($0.machine.tokens.keys) }
            if let stored = try await store.lease(
                clientAccountID: id, owner: owner, now: now, leaseMs: options.leaseMs,
                validUntil: now + options.refreshBeforeMs + options.requestTimeoutMs, excluding: held
            ) {
                add(BearerToken(stored.secret), expiresAt: stored.expiresAt, leaseExpiresAt: stored.leaseExpiresAt, now: now)
                logger.info("token leased from the store", metadata: ["token": "\(stored.fingerprint)"])
                return true
            }
            // A stored token leased elsewhere may belong to a process that died: the machine
            // decides whether to watch its lease (it may lapse) or mint now.
            if old == nil {
                let elsewhere = try await store.leasedElsewhere(
                    clientAccountID: id, owner: owner, now: now, validUntil: now + options.refreshBeforeMs + options.requestTimeoutMs)
                let wait = state.withLock {
                    $0.machine.leasedElsewhere(elsewhere, now: now, observationMs: options.leaseMs / 3 + 1_500)
                }
                if let wait {
                    logger.info("watching a stored token's lease before minting", metadata: ["until": "\(wait)"])
                    state.withLock { $0.machine.acquireFailed(retryAt: wait + 1, refreshOf: old) }
                    return false
                }
            }
            let budget = self.budget
            let decideAt = now
            let reservation = try await store.reserveMint(
                clientAccountID: id, instance: owner, now: decideAt, windowMs: options.mintWindowMs
            ) { recent in
                if case .refused(let nextAt) = budget.decide(recentMints: recent, now: decideAt) { return nextAt }
                return nil
            }
            guard case .reserved(let ledgerID) = reservation else {
                if case .refused(let nextAt) = reservation {
                    logger.notice("mint budget used up", metadata: ["next_mint_at": "\(nextAt)"])
                    state.withLock { $0.machine.acquireFailed(retryAt: nextAt, refreshOf: old) }
                }
                return false
            }
            let minted: MintedToken
            do {
                minted = try await api.mintToken(clientAccountID: id, key: configuration.key)
            } catch {
                try? await store.finishMint(id: ledgerID, fingerprint: nil, expiresAt: nil)
                throw error
            }
            // The token's life is counted from before the request: never later than the server's.
            let expiresAt = now + options.tokenLifetimeMs
            try await store.finishMint(id: ledgerID, fingerprint: minted.token.fingerprint, expiresAt: expiresAt)
            now = clock.now()
            try await store.insert(
                clientAccountID: id, secret: minted.token.secret, fingerprint: minted.token.fingerprint,
                mintedAt: now, expiresAt: expiresAt, owner: owner, leaseExpiresAt: now + options.leaseMs
            )
            add(minted.token, expiresAt: expiresAt, leaseExpiresAt: now + options.leaseMs, now: now)
            logger.info("token minted", metadata: ["token": "\(minted.token.fingerprint)", "refresh_of": "\(old ?? "-")"])
            Counter(label: "callwindow_token_mints_total", dimensions: [("client", id.uuidString.lowercased())]).increment()
            return true
        } catch {
            let retryAt = clock.now() + 5_000
            logger.warning("token acquisition failed", metadata: ["error": "\(error)", "retry_at": "\(retryAt)"])
            state.withLock { $0.machine.acquireFailed(retryAt: retryAt, refreshOf: old) }
            return false
        }
    }

    private func add(_ token: BearerToken, expiresAt: Int64, leaseExpiresAt: Int64, now: Int64) {
        state.withLock { state in
            state.secrets[token.fingerprint] = token
            state.machine.tokenAdded(fingerprint: token.fingerprint, expiresAt: expiresAt, leaseExpiresAt: leaseExpiresAt, now: now)
        }
    }

    // MARK: - Sending

    private enum Event: Sendable {
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
            endsAt: records.map(\.endsAt), batchSize: configuration.transport == .batch ? 500 : 1,
            checksAdmission: admission != nil, maintenanceIntervalMs: maintenanceIntervalMs, admissionMaxAgeMs: Self.admissionMaxAgeMs)
        let outcomes = await withTaskGroup(of: Event.self, returning: [RecordOutcome].self) { group in
            while true {
                let now = clock.now()
                let action = queue.next(
                    now: now, cancelled: Task.isCancelled, acquireBlockedUntil: { state.withLock { $0.machine.acquireBlockedUntil } }
                ) { at in
                    state.withLock { $0.machine.grant(now: at) }
                }
                switch action {
                case .finished(let outcomes):
                    group.cancelAll()
                    return outcomes
                case .again:
                    continue
                case .admit(let indices):
                    let withdrawn = await admission?.withdrawals(of: indices) ?? [:]
                    queue.admitted(indices, withdrawn: withdrawn, at: now)
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
        state.withLock { $0.queued = 0 }
        return outcomes
    }

    /// One HTTP attempt (real-time: one record; batch: up to 500, polled until final). The pacer
    /// learns of the answer as soon as it arrives (before a batch is polled); a 401 drops the
    /// token here and marks it revoked in the store.
    /// `grantedAt` is the attempt's start as the pool decided it (the instant its pacing and
    /// admission were checked), a moment before the request leaves.
    private func attempt(_ batch: [CallRecord], indices: [Int], token: BearerToken, sendID: UInt64, grantedAt: Int64) async -> Event {
        let id = configuration.clientAccountID
        let startedAt = grantedAt
        let outcome: PushOutcome
        let httpStatus: Int?
        var batchID: UUID?
        switch configuration.transport {
        case .v1, .v2:
            let result = await api.push(batch[0], transport: configuration.transport == .v1 ? .v1 : .v2, token: token, clientAccountID: id)
            (outcome, httpStatus) = (result.outcome, result.httpStatus)
        case .batch:
            let result = await api.pushBatch(batch, token: token, clientAccountID: id)
            (outcome, httpStatus, batchID) = (result.outcome, result.httpStatus, result.batchID)
        }
        let answeredAt = clock.now()
        let action = state.withLock {
            $0.machine.completed(
                fingerprint: token.fingerprint, sendID: sendID, outcome: outcome, answered: httpStatus != nil, now: answeredAt)
        }
        if case .drop(let fingerprint, let reason) = action {
            await drop(fingerprint, reason: reason, revoked: true)
        }
        let attempt = PushAttempt(
            recordIndices: indices, tokenFingerprint: token.fingerprint, httpStatus: httpStatus,
            outcome: outcome, startedAt: startedAt, latencyMs: answeredAt - startedAt, batchID: batchID
        )
        guard let batchID, outcome == .accepted else {
            return .answered(results: indices.map { ($0, outcome) }, attempt: attempt)
        }
        let statuses = await api.batchOutcomes(
            batchID: batchID, records: batch, token: token, clientAccountID: configuration.clientAccountID, clock: clock)
        return .answered(results: Array(zip(indices, statuses)).map { (index: $0.0, outcome: $0.1) }, attempt: attempt)
    }
}

/// A minimal double-ended queue of indices (front removals without O(n) shifts).
struct Deque {
    private var storage: [Int]
    private var head = 0

    init(_ elements: [Int]) {
        storage = elements
    }

    var isEmpty: Bool { head >= storage.count }
    var count: Int { storage.count - head }
    var first: Int? { isEmpty ? nil : storage[head] }

    @discardableResult
    mutating func removeFirst() -> Int {
        let value = storage[head]
        head += 1
        if head > 4_096, head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return value
    }

    mutating func append(_ value: Int) {
        storage.append(value)
    }

    /// The elements, front first.
    var elements: ArraySlice<Int> { storage[head...] }

    mutating func removeAll(where shouldRemove: (Int) -> Bool) {
        storage = storage[head...].filter { !shouldRemove($0) }
        head = 0
    }

    mutating func prepend(_ value: Int) {
        if head > 0 {
            head -= 1
            storage[head] = value
        } else {
            storage.insert(value, at: 0)
        }
    }
}
