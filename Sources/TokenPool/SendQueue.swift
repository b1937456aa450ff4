public import CallRecordAPI

/// The per-call part of `TokenPool.send`, as a pure machine: which records are ready, waiting
/// for a retry, out on a request or settled; when to ask the owner's admission, to run the
/// pool's housekeeping, and to wake. Time is passed in; the shell (`send`) performs the actions
/// and feeds back what happened, so every rule here is unit-tested without a clock or a socket.
///
/// The shell loops: `next(now:…)` returns one action; after `.admit` it calls `admitted`, after
/// `.awaitEvent` it feeds the event that arrived (`answered`, `timerFired`, `maintained`), and
/// `.finished` ends the send with one outcome per record.
public struct SendQueue: Sendable {
    /// What the shell does next.
    public enum Action: Sendable, Hashable {
        /// Ask the owner's `SendAdmission` about these records, then call `admitted`.
        case admit([Int])
        /// Attempt the records at `indices` on `fingerprint`'s granted send `sendID`, granted at
        /// `grantedAt`; its answer comes back as `answered`. If the token's secret is gone, call
        /// `returned` (and release the grant) instead.
        case send(indices: [Int], fingerprint: String, sendID: UInt64, grantedAt: Int64)
        /// Run the pool's housekeeping for `queued` waiting records; its end comes back as `maintained`.
        case maintain(queued: Int)
        /// Start a timer for `until`; it comes back as `timerFired`.
        case sleep(until: Int64)
        /// Wait for the next event of a request, a timer or the housekeeping.
        case awaitEvent
        /// Ask again at once (with a fresh `now`).
        case again
        /// Every record has its outcome, in the order given.
        case finished([RecordOutcome])
    }

    private enum Phase: Sendable { case start, granting, housekeeping, waking }

    private let endsAt: [Int64]
    private let batchSize: Int
    private let checksAdmission: Bool
    private let maintenanceIntervalMs: Int64
    private let admissionMaxAgeMs: Int64

    private var outcomes: [RecordOutcome?]
    private var failures: [Int]
    private var lastReason: [String]
    private var ready: Deque
    /// Records waiting for a retry, sorted by `at`.
    private var delayed: [(at: Int64, index: Int)] = []
    private var remaining: Int
    /// Requests out.
    public private(set) var running = 0
    private var timerAt: Int64?
    private var lastMaintenance: Int64 = .min
    private var maintaining = false
    /// Since when no token has been granted (`nil`: one was, or none was asked for yet).
    private var noTokenSince: Int64?
    /// When each record was last admitted (the instant its check began).
    private var admittedAt: [Int64]

    // The round in progress.
    private var phase = Phase.start
    private var wake: Int64?
    private var needMaintenance = false
    private var readmit = false

    /// A queue of records whose `ends_at` are `endsAt`, sent `batchSize` per request, with an
    /// admission check at most `admissionMaxAgeMs` old before each attempt when `checksAdmission`.
    public init(endsAt: [Int64], batchSize: Int, checksAdmission: Bool, maintenanceIntervalMs: Int64, admissionMaxAgeMs: Int64) {
        self.endsAt = endsAt
        self.batchSize = max(1, batchSize)
        self.checksAdmission = checksAdmission
        self.maintenanceIntervalMs = maintenanceIntervalMs
        self.admissionMaxAgeMs = admissionMaxAgeMs
        outcomes = Array(repeating: nil, count: endsAt.count)
        failures = Array(repeating: 0, count: endsAt.count)
        lastReason = Array(repeating: "not sent", count: endsAt.count)
        ready = Deque(Array(endsAt.indices))
        remaining = endsAt.count
        admittedAt = Array(repeating: .min, count: endsAt.count)
    }

    /// Records waiting to be sent (ready or in back-off).
    public var queued: Int { ready.count + delayed.count }

    /// How soon a send with no request of its own out asks again when the pool's in-flight limit
    /// is taken by its other sends, in ms.
    public static let blockedRetryMs: Int64 = 10

    /// The next action at `now`. `grant` asks the pool's machine for a send; `acquireBlockedUntil`
    /// gives the earliest instant the pool may acquire a token again (asked only when no token is free).
    public mutating func next(
        now: Int64, cancelled: Bool, acquireBlockedUntil: () -> Int64, grant: (Int64) -> TokenPoolStateMachine.Grant
    ) -> Action {
        switch phase {
        case .start:
            if cancelled, running == 0 {
                for index in outcomes.indices where outcomes[index] == nil {
                    finish(index, .unsent(lastReason: lastReason[index]))
                }
            }
            if remaining == 0 { return .finished(outcomes.enumerated().map { $1 ?? .unsent(lastReason: lastReason[$0]) }) }
            while let first = delayed.first, first.at <= now {
                delayed.removeFirst()
                ready.append(first.index)
            }
            if checksAdmission, !cancelled, let first = ready.first, needsAdmission(first, now) {
                return .admit(ready.elements.filter { needsAdmission($0, now) })
            }
            wake = delayed.first?.at
            needMaintenance = now >= lastMaintenance + maintenanceIntervalMs
            readmit = false
            phase = .granting
            return next(now: now, cancelled: cancelled, acquireBlockedUntil: acquireBlockedUntil, grant: grant)
        case .granting:
            while !ready.isEmpty, !cancelled {
                let first = ready.first!
                if endsAt[first] <= now {
                    ready.removeFirst()
                    finish(first, .expired(lastReason: lastReason[first]))
                    continue
                }
                if needsAdmission(first, now) {
                    readmit = true
                    break
                }
                switch grant(now) {
                case .send(let fingerprint, let sendID):
                    noTokenSince = nil
                    var indices: [Int] = []
                    while indices.count < batchSize, let next = ready.first, !needsAdmission(next, now) {
                        ready.removeFirst()
                        if endsAt[next] <= now {
                            finish(next, .expired(lastReason: lastReason[next]))
                        } else {
                            indices.append(next)
                        }
                    }
                    // Never empty: `first` is live and freshly admitted.
                    running += 1
                    return .send(indices: indices, fingerprint: fingerprint, sendID: sendID, grantedAt: now)
                case .wait(let until):
                    wake = min(wake ?? until, until)
                case .waitForAnswer:
                    // The pool's requests out may all be another send's (its share of the
                    // process's in-flight limit is taken): this one looks again shortly.
                    if running == 0 { wake = min(wake ?? now + Self.blockedRetryMs, now + Self.blockedRetryMs) }
                case .noToken:
                    needMaintenance = true
                    // Acquisition is retried no sooner than the machine allows.
                    let blockedUntil = acquireBlockedUntil()
                    let since = noTokenSince ?? now
                    noTokenSince = since
                    if now - since >= Self.releaseWithoutTokenMs || blockedUntil > now + Self.releaseWithoutTokenMs {
                        // Claimed records must not wait here for a token another instance may hold.
                        returnWaiting(now: now, reason: blockedUntil > now
                            ? "no token to send it with for the next \((blockedUntil - now + 999) / 1_000) s (mint budget used up, or the account's tokens held elsewhere)"
                            : "no token to send it with for \(Self.releaseWithoutTokenMs / 1_000) s")
                        break
                    }
                    let retryAt = max(now + 100, blockedUntil)
                    wake = min(wake ?? retryAt, retryAt)
                }
                break
            }
            phase = .housekeeping
            if needMaintenance, !maintaining, remaining > 0 {
                maintaining = true
                lastMaintenance = now
                return .maintain(queued: queued)
            }
            return next(now: now, cancelled: cancelled, acquireBlockedUntil: acquireBlockedUntil, grant: grant)
        case .housekeeping:
            phase = .waking
            if remaining == 0 || readmit {
                phase = .start
                return .again
            }
            if !maintaining, !ready.isEmpty || !delayed.isEmpty {
                let due = max(now + 1, lastMaintenance + maintenanceIntervalMs)
                wake = min(wake ?? due, due)
            }
            if cancelled {
                wake = nil
            } else if let wake, wake > now, timerAt.map({ wake < $0 }) ?? true {
                timerAt = wake
                return .sleep(until: wake)
            } else if let wake, wake <= now {
                phase = .start
                return .again
            }
            return next(now: now, cancelled: cancelled, acquireBlockedUntil: acquireBlockedUntil, grant: grant)
        case .waking:
            phase = .start
            if cancelled, running == 0, !maintaining { return .again }
            return .awaitEvent
        }
    }

    /// The admission check that began at `now` for `indices` withdrew `withdrawn` (index → reason).
    public mutating func admitted(_ indices: [Int], withdrawn: [Int: String], at now: Int64) {
        for index in indices { admittedAt[index] = now }
        guard !withdrawn.isEmpty else { return }
        ready.removeAll { withdrawn[$0] != nil }
        delayed.removeAll { withdrawn[$0.index] != nil }
        for (index, reason) in withdrawn where outcomes.indices.contains(index) && outcomes[index] == nil {
            finish(index, .withdrawn(reason: reason))
        }
    }

    /// A `.send` could not be made (the token's secret was dropped meanwhile): its records go back
    /// to the front, unchanged.
    public mutating func returned(_ indices: [Int]) {
        running = max(0, running - 1)
        for index in indices.reversed() { ready.prepend(index) }
    }

    /// A request ended at `now` with `results` (record index → outcome). `decide` applies the
    /// retry policy: (outcome, transient failures so far including this one, ends_at) → decision.
    public mutating func answered(
        _ results: [(index: Int, outcome: PushOutcome)], at now: Int64,
        decide: (PushOutcome, Int, Int64) -> RetryDecision
    ) {
        running = max(0, running - 1)
        for result in results {
            let index = result.index
            if case .transient = result.outcome { failures[index] += 1 }
            switch decide(result.outcome, failures[index], endsAt[index]) {
            case .final(let outcome):
                finish(index, outcome)
            case .retry(let at):
                lastReason[index] = result.outcome.description
                if at <= now {
                    ready.prepend(index)
                } else {
                    let position = delayed.firstIndex { $0.at > at } ?? delayed.count
                    delayed.insert((at, index), at: position)
                }
            }
        }
    }

    /// Ends the send at once: every unsettled record is `unsent`.
    public mutating func abandon() -> [RecordOutcome] {
        outcomes.enumerated().map { $1 ?? .unsent(lastReason: lastReason[$0]) }
    }

    /// The timer asked for by `.sleep` fired (possibly an older, later one: at worst one more
    /// wake-up than needed).
    public mutating func timerFired() {
        timerAt = nil
    }

    /// The housekeeping asked for by `.maintain` ended.
    public mutating func maintained() {
        maintaining = false
    }

    /// Without a token for this long (or when none can be acquired before then), the records
    /// waiting to be sent are handed back as `returned` (ms).
    public static let releaseWithoutTokenMs: Int64 = 5_000

    private mutating func returnWaiting(now: Int64, reason: String) {
        while let index = ready.first {
            ready.removeFirst()
            finish(index, .returned(reason: reason, retryAt: now))
        }
        for (at, index) in delayed { finish(index, .returned(reason: reason, retryAt: max(at, now))) }
        delayed.removeAll()
    }

    private func needsAdmission(_ index: Int, _ now: Int64) -> Bool {
        checksAdmission && (admittedAt[index] == .min || now - admittedAt[index] > admissionMaxAgeMs)
    }

    private mutating func finish(_ index: Int, _ outcome: RecordOutcome) {
        guard outcomes[index] == nil else { return }
        outcomes[index] = outcome
        remaining -= 1
    }
}
