// The dispatcher pushes due deliveries of one client account through its token pool.
//
//   claim (FOR UPDATE SKIP LOCKED, lease) ──► validate ──► TokenPool.send (paced, retried)
//        ▲                                      │                │ attempts, final outcomes
//        │ room for more?          LeaseRenewer (child task)     ▼
//        └──────────── ResultRecorder: results + audit rows (one transaction, fenced by the lease),
//                      in groups every ≤ 100 ms while the batch is out (ResultGroups)
//
// It never claims more than it has room for: `maxBatches` batches of at most `claimBatch` records
// are out at once, and more (up to four times as many) only while less than half a batch of the
// claimed records still waits for the API's answer — so records in retry back-off (5xx, 429,
// timeouts) do not leave the pool idle, and no more than about one batch waits unsent. Every
// round of attempts first asks a `DeliveryAdmission` which records may still go (campaign still
// active, record still in it, label usable, receiver not on the do-not-contact list). While a
// batch is out, `LeaseRenewer` renews its leases, so the rescuer of another instance never takes
// over work that is still being sent; if the process dies, the leases run out and that work is
// rescued (a record whose answer was lost may then be pushed twice — invariant 2). On graceful
// shutdown it stops claiming, lets the batches out finish, has `ResultRecorder` write their
// results, and releases its tokens. Records the pool could not finish because the process was
// cancelled go back to the queue unchanged.

import CallRecordAPI
public import Foundation
public import Logging
public import Planning
public import Postgres
public import ServiceLifecycle
public import Store
public import TokenPool
import Metrics
import Synchronization

/// Tuning of the dispatcher, with its defaults.
public struct DispatcherOptions: Sendable {
    /// Records claimed at once. Default 500.
    public var claimBatch = 500
    /// Batches out at once; up to four times as many while the ones out are down to their last
    /// few records (retries). Default 1; the daemon uses `scheduler.concurrent_batches` (2).
    public var maxBatches = 1
    /// Claim lease; renewed every third of it while a batch is out. Default 60 s.
    public var leaseMs: Int64 = 60_000
    /// The shortest sleep of a dispatcher that found nothing to claim although work was due
    /// (another instance claimed it first). Default 100 ms.
    public var idlePollMs: Int64 = 100
    /// The longest an idle dispatcher sleeps without a wake-up (`DueWakes`) when no delivery of
    /// its account is due, a fallback in case a notification was lost. Default 10 min.
    public var idleFallbackMs: Int64 = 600_000
    /// Field naming of the transport, for validation.
    public var naming: FieldNaming = .v1
    /// The longest a result the API has settled waits before it is written: results are
    /// written in groups while a batch is out, each at most this long after its first result
    /// (at once when a claim batch's worth waits). Default 100 ms.
    public var resultGroupMs: Int64 = 100

    /// Options with the given values; each parameter defaults to the default documented on its property.
    public init(claimBatch: Int = 500, maxBatches: Int = 1, leaseMs: Int64 = 60_000, idlePollMs: Int64 = 100,
                idleFallbackMs: Int64 = 600_000, naming: FieldNaming = .v1, resultGroupMs: Int64 = 100) {
        self.claimBatch = claimBatch
        self.maxBatches = maxBatches
        self.leaseMs = leaseMs
        self.idlePollMs = idlePollMs
        self.idleFallbackMs = idleFallbackMs
        self.naming = naming
        self.resultGroupMs = resultGroupMs
    }
}

/// Counters for metrics and tests.
public struct DispatcherCounters: Sendable, Equatable {
    /// Records claimed from the queue.
    public var claimed = 0
    /// Records the API accepted; like the other outcome counts, counted once the result write has finished
    /// or been given up.
    public var accepted = 0
    /// Records the API refused for good.
    public var rejected = 0
    /// Records refused by validation before any request.
    public var invalid = 0
    /// Records whose `ends_at` passed before they were accepted.
    public var expired = 0
    /// Records put back in the queue unchanged (at shutdown, or held by an admission check).
    public var released = 0
    /// Records an admission check ended as `cancelled` (campaign cancelled or deleted, record removed).
    public var cancelled = 0
    /// Records an admission check ended as `suppressed` (receiver on the do-not-contact list).
    public var suppressed = 0
    /// HTTP attempts behind the results counted so far.
    public var attempts = 0
    /// Failed attempts to write results (each one is retried).
    public var recordFailures = 0
    /// Round trips to the queue to claim or to look for due work (not result writes): what an
    /// idle dispatcher costs the database.
    public var queueReads = 0
    /// Claim lease renewals made while batches were out.
    public var leaseRenewals = 0
    /// Claim leases a renewal found lost: rescued by another instance after this one stalled
    /// past its lease (never a record whose result this process already wrote).
    public var leasesLost = 0
    /// Real time spent in claims and result writes, in milliseconds (batches overlap, so this
    /// can exceed the wall time when more than one is out).
    public var databaseMs: Double = 0
}

/// Claims, sends and records the deliveries of one client account.
public final class Dispatcher: Service, Sendable {
    private let clientAccountID: UUID
    private let database: PostgresPool
    private let tokens: TokenPool
    private let store: DeliveryStore
    private let owner: String
    private let options: DispatcherOptions
    private let clock: any WallClock
    private let logger: Logger
    private let validator = RecordValidator()
    private let counters = Mutex(DispatcherCounters())
    private let recorder: ResultRecorder
    private let renewer: LeaseRenewer
    private let wake: WakeSignal
    /// Fired by a graceful shutdown or `drain()`: stop claiming.
    private let stop = StopSignal()
    /// Claimed records not yet accepted or rejected by the API (nor otherwise finished).
    private let unsettled = SharedCount()

    /// A dispatcher for one client account, claiming from `store` on `database` as `owner` and sending
    /// through `tokens`, woken by `wake` when its account has work due; nothing runs until `run()`.
    public init(clientAccountID: UUID, database: PostgresPool, tokens: TokenPool, store: DeliveryStore, owner: String,
                options: DispatcherOptions = DispatcherOptions(), wake: WakeSignal = WakeSignal(), clock: any WallClock, logger: Logger) {
        self.wake = wake
        self.clientAccountID = clientAccountID
        self.database = database
        self.tokens = tokens
        self.store = store
        self.owner = owner
        self.options = options
        self.clock = clock
        self.logger = logger
        recorder = ResultRecorder(clientAccountID: clientAccountID, database: database, store: store, owner: owner, clock: clock, logger: logger)
        renewer = LeaseRenewer(database: database, store: store, owner: owner, leaseMs: options.leaseMs, clock: clock, logger: logger)
    }

    /// What the dispatcher has done so far.
    public var counts: DispatcherCounters { counters.withLock { $0 } }

    /// Results the recorder gave up on (see `ResultRecorder.unwritten`); the daemon exits 1 when any are left.
    public var unwrittenResults: Int { recorder.unwritten }

    /// The client account this dispatcher serves.
    public var account: UUID { clientAccountID }

    /// The account's token pool.
    public var tokenPool: TokenPool { tokens }

    /// Whether `drain()` or a graceful shutdown asked it to stop claiming.
    public var isDraining: Bool { stop.isFired }

    /// Stops claiming, as a graceful shutdown does, for this dispatcher alone (an account removed
    /// by a reload): the batches out finish and their results are written, records the pool could
    /// not settle go back to the queue, the tokens' leases are released, and `run()` returns.
    public func drain() {
        stop.fire()
        wake.fire()
    }

    /// Claims and sends until graceful shutdown or cancellation, then lets the batches out finish, records
    /// them and shuts the token pool down; database failures are logged and retried, not thrown.
    public func run() async throws {
        let stop = self.stop
        await withGracefulShutdownHandler {
            // The pool's housekeeping (lease renewal, refresh) runs beside the claims, as a child
            // task ended once the claim loop and its batches are done.
            await withTaskGroup(of: Void.self) { housekeeping in
                housekeeping.addTask { await self.tokens.run() }
                await self.claimLoop(stop: stop)
                housekeeping.cancelAll()
            }
            // Released even when the drain limit cancelled this task: another instance takes the
            // tokens over at once instead of after their lease lapses.
            await PostgresShield.run { await tokens.shutdown() }
        } onGracefulShutdown: {
            self.drain()
        }
    }

    /// Claims and sends until `stop` fires (or the task is cancelled), then lets the batches out
    /// finish and records them.
    private func claimLoop(stop: StopSignal) async {
        // Child tasks return true for a finished batch, false for a wake-up tick.
        await withTaskGroup(of: Bool.self) { group in
            var out = 0
            var ticking = false
            var databaseDown = false
            var idle = true
            while !stop.isFired && !Task.isCancelled {
                // Room for another batch: fewer than `maxBatches` out, or — up to four times
                // that — less than half a batch still waiting to be sent (the batches out
                // are down to records in retry back-off, which must not idle the pool).
                let room = out < options.maxBatches
                    || (out < options.maxBatches * 4 && unsettled.value < max(1, options.claimBatch / 2))
                if !room {
                    if !ticking {
                        ticking = true
                        group.addTask {
                            await stop.sleep(until: self.clock.now() + 100, on: self.clock)
                            return false
                        }
                    }
                    if let finished = await group.next() {
                        if finished { out -= 1 } else { ticking = false }
                    }
                    continue
                }
                // Idle, or without a token: ask the queue when work is due, and sleep until then
                // (or a wake-up). Claim only what the tokens in hand send within one claim lease:
                // nothing without a token, so due records wait for an instance that has one.
                if idle || tokens.capacity == 0 {
                    switch await nextStep(afterEmptyClaim: idle) {
                    case .claim:
                        break
                    case .idle(let until):
                        idle = false
                        await wake.sleep(until: until, on: clock)
                        continue
                    case .noToken(let until), .databaseDown(let until):
                        await stop.sleep(until: until, on: clock)
                        continue
                    }
                    idle = false
                }
                let limit = min(options.claimBatch, max(1, Int(min(tokens.capacity * Double(options.leaseMs) / 1_000, 1e9))))
                let batch: [Delivery]
                let claimStarted = ContinuousClock.now
                counters.withLock { $0.queueReads += 1 }
                do {
                    batch = try await database.withConnection { connection in
                        let now = self.clock.now()
                        let claimed = try await self.store.claim(clientAccountID: self.clientAccountID, owner: self.owner, now: now,
                                                                 limit: limit, leaseMs: self.options.leaseMs, on: connection)
                        // A full batch means more is due: the pool sizes itself to all of it.
                        // Counted only while the pool can still grow (a count of up to 10,000
                        // rows is not free, and a full pool has no use for it).
                        if claimed.count < limit {
                            self.tokens.noteBacklog(claimed.count * (self.options.maxBatches - 1))
                        } else if self.tokens.mayGrow {
                            let more = try await self.store.dueBacklog(clientAccountID: self.clientAccountID, now: now, on: connection)
                            self.tokens.noteBacklog(more + claimed.count * (self.options.maxBatches - 1))
                        }
                        return claimed
                    }
                    if databaseDown {
                        logger.notice("dispatcher reached the database again")
                        databaseDown = false
                    }
                } catch {
                    if !databaseDown {
                        logger.error("dispatcher cannot claim: database unavailable; retrying", metadata: ["error": "\(error)"])
                        databaseDown = true
                    }
                    await stop.sleep(until: clock.now() + 500, on: clock)
                    continue
                }
                let claimTook = ResultRecorder.milliseconds(since: claimStarted)
                counters.withLock { $0.databaseMs += claimTook }
                if batch.isEmpty {
                    idle = true
                    continue
                }
                counters.withLock { $0.claimed += batch.count }
                Gauge(label: "callwindow_tokens", dimensions: [("client", clientAccountID.uuidString.lowercased())])
                    .record(tokens.fingerprints.count)
                out += 1
                unsettled.add(batch.count)
                group.addTask {
                    await self.process(batch)
                    return true
                }
            }
            await group.waitForAll()
        }
    }

    private enum Step { case claim, idle(until: Int64), noToken(until: Int64), databaseDown(until: Int64) }

    /// What to do before claiming: claim; sleep until the account's next due instant (at most
    /// `idleFallbackMs`; a wake-up ends it sooner); or, with work due and no token, let the pool
    /// acquire one (lease a stored one, or mint within the account's share of the budget) and,
    /// while none can be had, wait for the pool's next chance (at most 5 s: another instance
    /// may release one). `afterEmptyClaim`: work said due was claimed by another instance.
    private func nextStep(afterEmptyClaim: Bool) async -> Step {
        let now = clock.now()
        let due: (next: Int64?, backlog: Int)
        counters.withLock { $0.queueReads += 1 }
        do {
            due = try await database.withConnection { connection in
                let next = try await self.store.nextDue(clientAccountID: self.clientAccountID, on: connection)
                // The backlog is counted only when the pool must grow to it from nothing.
                guard let next, next <= now, !afterEmptyClaim, self.tokens.capacity == 0 else { return (next, 0) }
                return (next, try await self.store.dueBacklog(clientAccountID: self.clientAccountID, now: now, on: connection))
            }
        } catch {
            logger.error("dispatcher cannot read the queue: database unavailable; retrying", metadata: ["error": "\(error)"])
            return .databaseDown(until: now + 500)
        }
        guard let next = due.next, next <= now else {
            let until = min(due.next ?? .max, now + options.idleFallbackMs)
            logger.debug("nothing due: sleeping until due or woken", metadata: ["client": "\(account.uuidString.lowercased())", "until": "\(until)"])
            return .idle(until: until)
        }
        if afterEmptyClaim { return .idle(until: now + options.idlePollMs) }
        if tokens.capacity > 0 { return .claim }
        tokens.noteBacklog(due.backlog)
        await tokens.maintain()
        if tokens.capacity > 0 { return .claim }
        let later = clock.now()
        let until = min(later + 5_000, max(later + options.idlePollMs, tokens.acquireBlockedUntil))
        logger.debug("work due but no token: waiting for the pool", metadata: [
            "client": "\(account.uuidString.lowercased())", "backlog": "\(due.backlog)", "until": "\(until)",
        ])
        return .noToken(until: until)
    }

    /// Sends one claimed batch and records its results; never throws. What the API settles is
    /// written in groups while the batch is out (`ResultGroups`); the rest when it is over.
    func process(_ batch: [Delivery]) async {
        let now = clock.now()
        var results: [DeliveryResult?] = Array(repeating: nil, count: batch.count)
        var sendable: [Int] = []
        for (index, delivery) in batch.enumerated() {
            let record = Self.record(delivery)
            let violations = validator.validateFields(record, naming: options.naming, now: now)
            if violations.isEmpty {
                sendable.append(index)
            } else {
                let reason = violations.map(\.description).joined(separator: "; ")
                let expired = delivery.endsAt <= now
                results[index] = DeliveryResult(delivery: delivery, next: expired ? .expired : .rejected,
                                                outcome: expired ? .expired : .invalid, reason: reason)
            }
        }
        // Records that will not be sent count as settled at once; the rest as the API decides.
        unsettled.add(-(batch.count - sendable.count))
        let groups = ResultGroups(intervalMs: options.resultGroupMs, maxGroup: options.claimBatch, clock: clock)
        await withTaskGroup(of: Void.self) { writer in
            // The writer is not cancelled with the send: it ends once `close` and all is written.
            writer.addTask { await groups.run { group in await self.write(group) } }
            if !sendable.isEmpty {
                await send(batch, sendable: sendable, into: &results, groups: groups)
            }
            groups.close(adding: results.compactMap { $0 })
        }
    }

    /// Sends the `sendable` records of `batch`. What the API settles goes to `groups` as it
    /// comes; what it did not settle is put into `results`.
    private func send(_ batch: [Delivery], sendable: [Int], into results: inout [DeliveryResult?], groups: ResultGroups) async {
        let attempts = AttemptLog(unsettled: unsettled) { settled in
            groups.add(settled.map { one in
                let delivery = batch[sendable[one.position]]
                return switch one.outcome {
                case .rejected(let reason):
                    DeliveryResult(delivery: delivery, next: .rejected, outcome: .rejected, reason: reason, attempts: one.attempts)
                default:
                    DeliveryResult(delivery: delivery, next: .accepted, outcome: .accepted, attempts: one.attempts)
                }
            })
        }
        let records = sendable.map { Self.record(batch[$0]) }
        // No record is attempted unless an admission check at most a second old allows it.
        let admission = DeliveryAdmission(claimed: sendable.map { (batch[$0].id, batch[$0].leaseToken) }, owner: owner,
                                          database: database, store: store, clock: clock, logger: logger)
        // The leases are renewed while the batch is out — all of them but those the API settled
        // (written within a result group's interval), the invalid and expired records' too,
        // whose results are written with the rest: a child task, ended with the send.
        let stillOut: @Sendable () -> [Int64] = {
            let settled = Set(attempts.settledPositions.map { batch[sendable[$0]].id })
            return batch.map(\.id).filter { !settled.contains($0) }
        }
        let outcomes = await withTaskGroup(of: [RecordOutcome]?.self) { group in
            group.addTask {
                await self.renewer.renew(stillOut) { _, lost in
                    self.counters.withLock { $0.leaseRenewals += 1; $0.leasesLost += lost }
                }
                return nil
            }
            group.addTask { await self.tokens.send(records, admission: admission, onAttempt: attempts.append) }
            var outcomes: [RecordOutcome] = []
            for await finished in group {
                guard let finished else { continue }
                outcomes = finished
                group.cancelAll()
            }
            return outcomes
        }
        let streamed = attempts.settledPositions
        let byRecord = attempts.byRecord()
        for (position, index) in sendable.enumerated() where !streamed.contains(position) {
            let delivery = batch[index]
            let tried = byRecord[position] ?? []
            switch outcomes[position] {
            case .accepted:
                results[index] = DeliveryResult(delivery: delivery, next: .accepted, outcome: .accepted, attempts: tried)
            case .rejected(let reason):
                results[index] = DeliveryResult(delivery: delivery, next: .rejected, outcome: .rejected, reason: reason, attempts: tried)
            case .unsent where delivery.endsAt > clock.now():
                // The process is stopping: put it back as it was (with any attempts audited).
                results[index] = DeliveryResult(delivery: delivery, next: .retry, outcome: .released,
                                                reason: "released at shutdown", retryAt: clock.now(), attempts: tried)
            case .returned(let reason, let retryAt) where delivery.endsAt > clock.now():
                // No token here: back in the queue for an instance that has one.
                results[index] = DeliveryResult(delivery: delivery, next: .retry, outcome: .released,
                                                reason: reason, retryAt: retryAt, attempts: tried)
            case .expired(let reason), .unsent(let reason), .returned(let reason, _):
                results[index] = DeliveryResult(delivery: delivery, next: .expired, outcome: .expired, reason: reason, attempts: tried)
            case .withdrawn(let reason):
                // An admission check withdrew it before any further attempt.
                switch admission.withdrawal(at: position) {
                case .cancel?:
                    results[index] = DeliveryResult(delivery: delivery, next: .cancelled, outcome: .cancelled, reason: reason, attempts: tried)
                case .suppress?:
                    results[index] = DeliveryResult(delivery: delivery, next: .suppressed, outcome: .suppressed, reason: reason, attempts: tried)
                case .hold?, nil:
                    // Not now: back in the queue as it was (a paused campaign is not claimed again).
                    results[index] = DeliveryResult(delivery: delivery, next: .retry, outcome: .released,
                                                    reason: "held: \(reason)", retryAt: clock.now(), attempts: tried)
                }
            }
        }
        // Whatever the sends left unsettled (expired, released at shutdown) is finished now.
        unsettled.add(-(sendable.count - streamed.count))
    }

    /// Writes one group of results and counts them (once written, so the counts say what the
    /// database holds).
    private func write(_ group: [DeliveryResult]) async {
        let recording = await recorder.record(group)
        counters.withLock { counters in
            counters.recordFailures += recording.failures
            counters.databaseMs += recording.databaseMs
            for result in group {
                switch result.outcome {
                case .accepted: counters.accepted += 1
                case .rejected: counters.rejected += 1
                case .invalid: counters.invalid += 1
                case .expired: counters.expired += 1
                case .released: counters.released += 1
                case .cancelled: counters.cancelled += 1
                case .suppressed: counters.suppressed += 1
                }
                counters.attempts += result.attempts.count
            }
        }
    }

    static func record(_ delivery: Delivery) -> CallRecord {
        CallRecord(caller: delivery.caller, receiver: delivery.receiver, startsAt: delivery.startsAt, endsAt: delivery.endsAt,
                   labelID: delivery.labelID, labelName: delivery.labelName, callReason: delivery.callReason)
    }
}

