import CallRecordAPI
import Foundation
import Logging
import Planning
import Ledger
import Sandbox
import Synchronization
import TestSupport
import Testing
import TokenPool

/// One sandbox account, a pool factory and valid records, around an in-process sandbox. The
/// pools' ledger is a `MemoryTokenLedger` (the conformance suite shows it behaves as the
/// PostgreSQL store does), so these tests need no database.
struct Fixture {
    let account = SandboxAccount(labelName: "Pool Tests")
    var client: UUID { account.client }
    var key: APIKey { account.key }
    var label: UUID { account.label }

    func sandbox(
        clock: any WallClock, limits: SandboxConfiguration.Limits = .init(), faults: SandboxConfiguration.Faults = .init()
    ) throws -> SandboxServer {
        try SandboxServer(configuration: account.configuration(limits: limits, faults: faults), clock: clock, port: 0)
    }

    /// The client's options for a sandbox on `port`: timeouts within the pool's 5 s request timeout.
    static func apiOptions(port: Int) -> APIClientOptions {
        .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 2_000, requestTimeoutMs: 3_000)
    }

    func pool(
        _ instance: String, api: APIClient, ledger: any TokenLedger, clock: any WallClock,
        options: TokenPoolOptions = TokenPoolOptions(), transport: Transport = .v1
    ) throws -> TokenPool {
        try TokenPool(
            configuration: .init(clientAccountID: client, key: key, transport: transport, instance: instance),
            options: options, ledger: ledger, api: api, clock: clock, jitterSeed: 1
        )
    }

    func records(_ count: Int, now: Int64, offset: Int = 0) -> [CallRecord] {
        (0..<count).map { n in
            CallRecord(
                caller: "4930901820", receiver: String(4_915_100_000_000 + offset + n),
                startsAt: now + 60_000, endsAt: now + 3_600_000 * 4, labelID: label
            )
        }
    }
}

/// A number shared by a test's tasks.
final class Tally: Sendable {
    private let number = Mutex(0)
    var value: Int { number.withLock { $0 } }
    func update(_ change: (inout Int) -> Void) { number.withLock { change(&$0) } }
}

/// A `MemoryTokenLedger` that, each time a pool records or stores a mint, asks for a mint for
/// another instance under a cap of one token, as a second process growing at that instant would:
/// what it was answered is kept in `probes`.
final class ProbingLedger: TokenLedger {
    let base = MemoryTokenLedger()
    private let clock: any WallClock
    private let answers = Mutex<[String]>([])
    init(clock: any WallClock) { self.clock = clock }

    var probes: [String] { answers.withLock { $0 } }

    private func probe(_ step: String, client: UUID) async throws {
        let now = clock.now()
        let answer = try await base.reserveMint(clientAccountID: client, instance: "other", now: now, windowMs: 1_800_000,
                                                cap: TokenCap(max: 1, validUntil: now), decide: { _ in nil })
        if case .reserved(let id) = answer { try await base.finishMint(id: id, fingerprint: nil, expiresAt: nil, answeredAt: now) }
        answers.withLock { $0.append("\(step): \(answer)") }
    }

    private let lastClient = Mutex<UUID?>(nil)

    func reserveMint(clientAccountID: UUID, instance: String, now: Int64, windowMs: Int64, cap: TokenCap?,
                     decide: @Sendable ([Int64]) -> Int64?) async throws -> MintReservation {
        lastClient.withLock { $0 = clientAccountID }
        return try await base.reserveMint(clientAccountID: clientAccountID, instance: instance, now: now, windowMs: windowMs, cap: cap, decide: decide)
    }
    func finishMint(id: Int64, fingerprint: String?, expiresAt: Int64?, answeredAt: Int64) async throws {
        try await base.finishMint(id: id, fingerprint: fingerprint, expiresAt: expiresAt, answeredAt: answeredAt)
        if let client = lastClient.withLock({ $0 }) { try await probe("mint recorded", client: client) }
    }
    func recentMints(clientAccountID: UUID, now: Int64, windowMs: Int64) async throws -> [Int64] {
        try await base.recentMints(clientAccountID: clientAccountID, now: now, windowMs: windowMs)
    }
    func insert(clientAccountID: UUID, secret: String, fingerprint: String, mintedAt: Int64, expiresAt: Int64,
                owner: String, leaseExpiresAt: Int64) async throws {
        try await base.insert(clientAccountID: clientAccountID, secret: secret, fingerprint: fingerprint, mintedAt: mintedAt,
                              expiresAt: expiresAt, owner: owner, leaseExpiresAt: leaseExpiresAt)
        try await probe("token stored", client: clientAccountID)
    }
    func lease(clientAccountID: UUID, owner: String, now: Int64, leaseMs: Int64, validUntil: Int64, excluding: [String]) async throws -> StoredToken? {
        try await base.lease(clientAccountID: clientAccountID, owner: owner, now: now, leaseMs: leaseMs, validUntil: validUntil, excluding: excluding)
    }
    func renew(clientAccountID: UUID, fingerprints: [String], owner: String, now: Int64, leaseMs: Int64) async throws -> [String] {
        try await base.renew(clientAccountID: clientAccountID, fingerprints: fingerprints, owner: owner, now: now, leaseMs: leaseMs)
    }
    func leasedElsewhere(clientAccountID: UUID, owner: String, now: Int64, validUntil: Int64) async throws -> [(fingerprint: String, leaseExpiresAt: Int64)] {
        try await base.leasedElsewhere(clientAccountID: clientAccountID, owner: owner, now: now, validUntil: validUntil)
    }
    func release(clientAccountID: UUID, fingerprint: String, owner: String, now: Int64) async throws {
        try await base.release(clientAccountID: clientAccountID, fingerprint: fingerprint, owner: owner, now: now)
    }
    func revoke(clientAccountID: UUID, fingerprint: String, now: Int64) async throws {
        try await base.revoke(clientAccountID: clientAccountID, fingerprint: fingerprint, now: now)
    }
    func deleteExpired(clientAccountID: UUID, now: Int64) async throws -> Int {
        try await base.deleteExpired(clientAccountID: clientAccountID, now: now)
    }
}

/// A `SendAdmission` that answers with `decide` and records each check: when, and for which records.
final class RecordingAdmission: SendAdmission {
    private let list = Mutex<[(at: Int64, indices: [Int])]>([])
    private let clock: any WallClock
    private let decide: @Sendable ([Int], Int64) -> [Int: String]

    init(clock: any WallClock, decide: @escaping @Sendable ([Int], Int64) -> [Int: String]) {
        self.clock = clock
        self.decide = decide
    }

    var checks: [(at: Int64, indices: [Int])] { list.withLock { $0 } }

    func check(_ indices: [Int]) async -> AdmissionCheck {
        let now = clock.now()
        list.withLock { $0.append((now, indices)) }
        return AdmissionCheck(withdrawn: decide(indices, now), checkedAt: now)
    }
}

/// A `SendAdmission` whose every check first waits `waitMs` on the clock (a query queued for a
/// database connection), then reads the owner's state and withdraws nothing.
final class QueuedAdmission: SendAdmission {
    private let clock: ManualClock
    private let waitMs: Int64
    private let list = Mutex<[Int64]>([])

    init(clock: ManualClock, waitMs: Int64) {
        self.clock = clock
        self.waitMs = waitMs
    }

    var checkedAt: [Int64] { list.withLock { $0 } }

    func check(_ indices: [Int]) async -> AdmissionCheck {
        await clock.sleepIgnoringCancellation(until: clock.now() + waitMs)
        let now = clock.now()
        list.withLock { $0.append(now) }
        return AdmissionCheck(checkedAt: now)
    }
}

/// Collects attempts from the pool's callback.
final class Attempts: Sendable {
    private let list = Mutex<[PushAttempt]>([])
    func append(_ attempt: PushAttempt) { list.withLock { $0.append(attempt) } }
    var all: [PushAttempt] { list.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(3))) struct TokenPoolTests {
    @Test func a401LeadsToAReplacementToken() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let pool = try fixture.pool("p1", api: api, ledger: ledger, clock: clock)
                let attempts = Attempts()
                let (first, before, revoked, second) = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "two sends around a revocation") {
                    let first = await pool.send(fixture.records(20, now: clock.now()), onAttempt: attempts.append)
                    let before = pool.fingerprints
                    let revoked = server.revoke()
                    return (first, before, revoked, await pool.send(fixture.records(20, now: clock.now(), offset: 100), onAttempt: attempts.append))
                }
                #expect(first.allSatisfy { $0 == .accepted })
                #expect(before.count == 1)
                #expect(revoked == 1)
                #expect(second.allSatisfy { $0 == .accepted })
                #expect(attempts.all.contains { $0.outcome == .unauthorized && $0.httpStatus == 401 && $0.tokenFingerprint == before[0] })
                #expect(pool.fingerprints.count == 1)
                #expect(pool.fingerprints != before)
                let stats = server.stats()
                #expect(stats.tokensMinted == 2)
                // A record is applied twice only after an answer was lost (the client's timeout on
                // a loaded machine): the sandbox applied it, the pool retried it.
                let lostAnswers = attempts.all.filter { $0.httpStatus == nil }.reduce(0) { $0 + $1.recordIndices.count }
                #expect(stats.accepted >= 40 && stats.accepted <= 40 + lostAnswers, "\(lostAnswers) records' answers lost")
                await pool.shutdown()
            }
        }
    }

    @Test func aTokenIsRefreshedBeforeExpiryWithoutAGap() async throws {
        let fixture = Fixture()
        let start: Int64 = 1_900_000_000_000
        let clock = ManualClock(start: start)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            // Time stands still while a request is out (only this test moves the clock), so the
            // client may wait long in real time: a request that timed out on a loaded machine
            // would leave its retry waiting for simulated time. The pool's lease and request
            // timeout (simulated) are sized to match; 5 s steps renew the lease in time.
            try await APIClient.withClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 10_000, requestTimeoutMs: 40_000)) { api in
                var options = TokenPoolOptions()
                options.requestTimeoutMs = 60_000
                options.leaseMs = 200_000
                let pool = try fixture.pool("p1", api: api, ledger: ledger, clock: clock, options: options)
                #expect(await pool.prepare(tokens: 1) == 1)
                let original = pool.fingerprints
                var seen: [String] = []
                // Every 5 s of simulated time for 65 minutes: maintenance (lease renewal, refresh)
                // and one record sent — which must be accepted every time (no gap).
                for step in 0..<(65 * 12) {
                    clock.advance(by: 5_000)
                    await pool.maintain(queued: 0)
                    let attempts = Attempts()
                    let records = fixture.records(1, now: clock.now(), offset: step)
                    // Nothing here waits on the simulated clock: with a token in hand and no pacing
                    // due, the send is answered without time moving. Only the test moves time.
                    let outcome = try await withTimeout(.seconds(90), "the send at step \(step) (simulated \(clock.now() - start) ms)") {
                        await pool.send(records, onAttempt: attempts.append)
                    }
                    #expect(outcome == [.accepted], "step \(step)")
                    if let fingerprint = attempts.all.last?.tokenFingerprint, seen.last != fingerprint { seen.append(fingerprint) }
                    if outcome != [.accepted] { break }
                }
                #expect(seen.count == 2, "one refresh in 65 minutes")
                #expect(seen.first == original.first)
                let stats = server.stats()
                #expect(stats.tokensMinted == 2)
                #expect(stats.unauthorized == 0, "the old token was never used after its expiry")
                await pool.shutdown()
            }
        }
    }

    @Test func twoPoolsSharingADatabaseStayWithinTheBudgetAndNeverShareAToken() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                var options = TokenPoolOptions()
                options.maxTokens = 8
                let a = try fixture.pool("A", api: api, ledger: ledger, clock: clock, options: options)
                let b = try fixture.pool("B", api: api, ledger: ledger, clock: clock, options: options)
                let attemptsA = Attempts()
                let attemptsB = Attempts()
                let now = clock.now()
                let (outA, outB) = try await withSimulatedTime(on: clock, busy: { a.isBusy || b.isBusy }, "two pools sending 1,500 records each") {
                    async let resultA = a.send(fixture.records(1_500, now: now), onAttempt: attemptsA.append)
                    async let resultB = b.send(fixture.records(1_500, now: now, offset: 10_000), onAttempt: attemptsB.append)
                    return await (resultA, resultB)
                }
                #expect(outA.allSatisfy { $0 == .accepted })
                #expect(outB.allSatisfy { $0 == .accepted })
                let usedA = Set(attemptsA.all.map(\.tokenFingerprint))
                let usedB = Set(attemptsB.all.map(\.tokenFingerprint))
                #expect(usedA.isDisjoint(with: usedB), "a token is used by one pool at a time")
                #expect(!usedA.isEmpty && !usedB.isEmpty)
                #expect(usedA.count + usedB.count >= 3, "the pools grew with demand")
                let stats = server.stats()
                #expect(stats.tokensMinted <= 10)
                #expect(stats.mintsRefused == 0, "the shared ledger refuses before the API does")
                #expect(stats.rateLimited == 0)
                for (_, token) in stats.tokens { #expect(token.peak1s <= 100) }
                print("two pools test: \(clock.now() - now) ms simulated, tokens \(usedA.count) + \(usedB.count), attempts \(attemptsA.all.count) + \(attemptsB.all.count)")
                let minted = try await ledger.recentMints(clientAccountID: fixture.client, now: clock.now(), windowMs: 1_800_000)
                #expect(minted.count <= 10)
                await a.shutdown()
                await b.shutdown()
            }
        }
    }

    /// Two pools sending 60 records each, unpaced, at most 16 in flight each, against answers
    /// 20 ms late; returns the most requests both had in flight at once (sampled every
    /// millisecond) and every outcome. Kept small: in the test process every HTTP client and
    /// server shares the same event loops (400 requests queued here once starved the other
    /// suites' connects in a CI run).
    func peakInFlight(share: InFlightShare?) async throws -> (peak: Int, outcomes: [RecordOutcome]) {
        let fixture = Fixture()
        let clock = SystemClock()
        let server = try fixture.sandbox(clock: clock, limits: .init(enforce: false), faults: .init(latencyP50Ms: 20, latencyP99Ms: 30))
        return try await server.withRunning { port in
            var apiOptions = Fixture.apiOptions(port: port)
            apiOptions.maxConnectionsPerHost = 40
            return try await APIClient.withClient(options: apiOptions) { api in
                var options = TokenPoolOptions(maxTokens: 1)
                options.enforceLimits = false
                options.maxInFlight = 16
                let pools = try ["A", "B"].map { name in
                    try TokenPool(configuration: .init(clientAccountID: fixture.client, key: fixture.key, transport: .v1, instance: name),
                                  options: options, ledger: MemoryTokenLedger(), api: api, clock: clock, jitterSeed: 1, share: share)
                }
                let peak = Tally()
                let done = Tally()
                let outcomes = try await withTimeout(.seconds(60), "two pools sending 60 records each") {
                    await withTaskGroup(of: [RecordOutcome].self) { group in
                        for (index, pool) in pools.enumerated() {
                            group.addTask {
                                defer { done.update { $0 += 1 } }
                                return await pool.send(fixture.records(60, now: clock.now(), offset: index * 1_000))
                            }
                        }
                        group.addTask {
                            while done.value < pools.count {
                                let now = pools.reduce(0) { $0 + $1.inFlight }
                                peak.update { $0 = max($0, now) }
                                try? await Task.sleep(for: .milliseconds(1))
                            }
                            return []
                        }
                        var all: [RecordOutcome] = []
                        for await part in group { all += part }
                        return all
                    }
                }
                for pool in pools { await pool.shutdown() }
                return (peak.value, outcomes)
            }
        }
    }

    @Test func poolsSharingTheProcesssInFlightLimitKeepWithinIt() async throws {
        // Each pool alone may have 16 out: both together put up to 32 in flight.
        let alone = try await peakInFlight(share: nil)
        #expect(alone.peak > 6, "without a share: \(alone.peak) in flight at the peak")
        // Sharing 4: 2 each once both send; one that started first may still have up to 4 out
        // as the other takes its 2, so never above 6.
        let shared = try await peakInFlight(share: InFlightShare(limit: 4))
        print("in-flight share test: peak \(alone.peak) in flight without a share, \(shared.peak) sharing 4")
        #expect(shared.peak <= 6, "\(shared.peak) in flight at the peak")
        #expect(shared.peak >= 2)
        #expect(shared.outcomes.count == 120)
        #expect(shared.outcomes.allSatisfy { $0 == .accepted })
    }

    @Test func aShareGivesEachSendingPoolItsPartAndAtLeastOne() {
        let share = InFlightShare(limit: 10)
        #expect(share.perPool == 10, "no pool sending: the whole limit for the first")
        share.joined()
        #expect(share.perPool == 10)
        share.joined()
        share.joined()
        #expect(share.perPool == 3)
        for _ in 0..<20 { share.joined() }
        #expect(share.perPool == 1, "more pools than the limit: one each")
        for _ in 0..<30 { share.left() }
        #expect(share.poolsSending == 0 && share.perPool == 10)
        #expect(InFlightShare(limit: 0).limit == 1)
    }

    @Test func aMintedTokenCountsAgainstTheCapAtEveryStepOfStoringIt() async throws {
        // Two daemons sharing tokens.max 3 minted 4 in a CI run: between recording the mint as
        // done and storing the token, the token counted nowhere, and the other daemon's capped
        // reservation in that instant was allowed.
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = ProbingLedger(clock: clock)
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let pool = try fixture.pool("A", api: api, ledger: ledger, clock: clock, options: TokenPoolOptions(maxTokens: 1))
                let outcomes = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "10 records") {
                    await pool.send(fixture.records(10, now: clock.now()))
                }
                #expect(outcomes.allSatisfy { $0 == .accepted })
                await pool.shutdown()
            }
        }
        #expect(ledger.probes.count == 2, "\(ledger.probes)")
        #expect(ledger.probes.allSatisfy { $0.hasSuffix("atCapacity(live: 1)") || $0.hasSuffix("atCapacity(live: 2)") }, "\(ledger.probes)")
    }

    @Test func theAccountsTokensAreCappedAcrossInstancesAndMoveToDemandWithoutMints() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                var options = TokenPoolOptions()
                options.maxTokens = 4
                let a = try fixture.pool("A", api: api, ledger: ledger, clock: clock, options: options)
                let b = try fixture.pool("B", api: api, ledger: ledger, clock: clock, options: options)
                // Both see the account's large backlog; the first grows to tokens.max, the second
                // mints nothing: the account holds at most tokens.max, not each instance.
                a.noteBacklog(10_000)
                await a.maintain()
                #expect(a.fingerprints.count == 4)
                b.noteBacklog(10_000)
                await b.maintain()
                #expect(b.fingerprints.isEmpty, "it first watches the leases held elsewhere (their holder may have died)")
                // They are renewed: their holder lives, and the account already holds tokens.max.
                clock.advance(by: options.leaseMs / 3 + 1_501)
                await a.maintain()
                await b.maintain()
                #expect(b.fingerprints.isEmpty)
                #expect(b.capacity == 0, "so it claims nothing")
                #expect(server.stats().tokensMinted == 4, "4 mints of the budget of 10, not 8")
                // The first instance stops; the second leases its stored tokens once it looks
                // again (within seconds, not when the budget's next mint is due), minting none.
                await a.shutdown()
                clock.advance(by: TokenPoolStateMachine.growthRecheckMs)
                await b.maintain()
                #expect(b.fingerprints.count == 4)
                #expect(server.stats().tokensMinted == 4)
                await b.shutdown()
            }
        }
    }

    @Test func anOccasionalCallGetsATokenWhileAnotherInstanceHoldsTokensMax() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                var options = TokenPoolOptions()
                options.maxTokens = 2
                let daemon = try fixture.pool("daemon", api: api, ledger: ledger, clock: clock, options: options)
                #expect(await daemon.prepare(tokens: 2) == 2)
                // `labels sync` in another process: neither the cap nor the leases held elsewhere stop it.
                let sync = try fixture.pool("labels-sync", api: api, ledger: ledger, clock: clock, options: options)
                let labels = try await sync.withToken { token in try await api.labels(clientAccountID: fixture.client, token: token) }
                #expect(!labels.isEmpty)
                #expect(Set(sync.fingerprints).isDisjoint(with: daemon.fingerprints))
                await sync.shutdown()
                await daemon.shutdown()
            }
        }
    }

    @Test func aRestartedPoolReusesStoredTokensWithoutMinting() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let first = try fixture.pool("first", api: api, ledger: ledger, clock: clock)
                #expect(await first.prepare(tokens: 2) == 2)
                let held = first.fingerprints
                await first.shutdown()
                let second = try fixture.pool("second", api: api, ledger: ledger, clock: clock)
                #expect(await second.prepare(tokens: 2) == 2)
                #expect(second.fingerprints == held)
                let outcomes = try await withSimulatedTime(on: clock, busy: { second.isBusy }, "ten records on the re-leased tokens") {
                    await second.send(fixture.records(10, now: clock.now()))
                }
                #expect(outcomes.allSatisfy { $0 == .accepted })
                #expect(server.stats().tokensMinted == 2)
                await second.shutdown()
            }
        }
    }

    @Test func aKeyGivenByUseKeyMintsTheNextTokensWhileTheTokensHeldStay() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                // The key the pool starts with is one the API does not know (it was replaced).
                let stale = APIKey(keyID: UUID(), apiKey: "replaced")
                let pool = try TokenPool(
                    configuration: .init(clientAccountID: fixture.client, key: stale, instance: "rekeyed"),
                    options: TokenPoolOptions(maxTokens: 2), ledger: ledger, api: api, clock: clock, jitterSeed: 1)
                #expect(await pool.prepare(tokens: 1) == 0)
                #expect(server.stats().mintsFailed == 1)
                pool.useKey(fixture.key)
                #expect(pool.key == fixture.key && pool.configuration.key == fixture.key)
                // Past the 5 s retry after the failed acquisition, the next mint uses the new key.
                clock.advance(by: 6_000)
                #expect(await pool.prepare(tokens: 1) == 1)
                #expect(server.stats().tokensMinted == 1)
                let held = pool.fingerprints
                // Another new key: the token held stays in use, nothing is minted for the change.
                pool.useKey(APIKey(keyID: UUID(), apiKey: "next"))
                let outcomes = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "five records on the token held") {
                    await pool.send(fixture.records(5, now: clock.now()))
                }
                #expect(outcomes.allSatisfy { $0 == .accepted })
                #expect(pool.fingerprints == held)
                #expect(server.stats().tokensMinted == 1)
                await pool.shutdown()
            }
        }
    }

    @Test func batchRecordsAreAcceptedOnlyWhenTheStatusSaysSo() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let pool = try fixture.pool("p", api: api, ledger: ledger, clock: clock, options: .batch(maxTokens: 1), transport: .batch)
                var records = fixture.records(1_200, now: clock.now())
                records[7].callReason = "bad!"  // invalid: rejected per record by the status
                let attempts = Attempts()
                let batch = records
                let outcomes = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "1,200 records in three batches") {
                    await pool.send(batch, onAttempt: attempts.append)
                }
                #expect(outcomes.filter { $0 == .accepted }.count == 1_199)
                if case .rejected = outcomes[7] {} else { Issue.record("record 7 should be rejected, got \(outcomes[7])") }
                #expect(attempts.all.count == 3, "500 + 500 + 200")
                #expect(attempts.all.allSatisfy { $0.batchID != nil })
                await pool.shutdown()
            }
        }
    }

    @Test func aCancelledSendReturnsItsRecordsUnsentAndSendsNothing() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let pool = try fixture.pool("p", api: api, ledger: ledger, clock: clock)
                let records = fixture.records(3, now: clock.now())
                // A child of a cancelled group starts cancelled: the pool grants nothing.
                let outcomes = await withTaskGroup(of: [RecordOutcome].self) { group in
                    group.cancelAll()
                    group.addTask { await pool.send(records) }
                    return await group.next() ?? []
                }
                #expect(outcomes == Array(repeating: .unsent(lastReason: "not sent"), count: 3))
                #expect(server.stats().accepted == 0)
                await pool.shutdown()
            }
        }
    }

    @Test func noRecordIsAttemptedWithoutAFreshAdmissionAndWithdrawnOnesAreNeverSent() async throws {
        // 250 v1 records on one token (100/s) take about 2.5 s: the pool must ask again for the
        // records it reaches later. The owner withdraws record 3 at once, and every record from
        // 200 on once the first second has passed (a campaign paused mid-send).
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let pool = try fixture.pool("p", api: api, ledger: ledger, clock: clock, options: TokenPoolOptions(maxTokens: 1))
                let start = clock.now()
                let admission = RecordingAdmission(clock: clock) { indices, now in
                    var withdrawn: [Int: String] = [:]
                    for index in indices where index == 3 || (index >= 200 && now - start >= 1_000) {
                        withdrawn[index] = index == 3 ? "receiver removed" : "campaign paused"
                    }
                    return withdrawn
                }
                let attempts = Attempts()
                let outcomes = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "250 records checked by an admission") {
                    await pool.send(fixture.records(250, now: start), admission: admission, onAttempt: attempts.append)
                }
                #expect(outcomes[3] == .withdrawn(reason: "receiver removed"))
                let sent = Set(attempts.all.flatMap(\.recordIndices))
                #expect(!sent.contains(3), "a withdrawn record is never attempted")
                for (index, outcome) in outcomes.enumerated() where index != 3 {
                    if case .withdrawn(let reason) = outcome {
                        #expect(index >= 200 && reason == "campaign paused")
                        #expect(!sent.contains(index))
                    } else {
                        #expect(outcome == .accepted, "record \(index): \(outcome)")
                    }
                }
                #expect(outcomes[200...].contains { if case .withdrawn = $0 { true } else { false } }, "the pause reached records not yet sent")
                // Every attempt went out on a check at most a second old, one set query per round.
                let checks = admission.checks
                for attempt in attempts.all {
                    for index in attempt.recordIndices {
                        let latest = checks.filter { $0.at <= attempt.startedAt && $0.indices.contains(index) }.map(\.at).max()
                        #expect(latest.map { attempt.startedAt - $0 <= TokenPool.admissionMaxAgeMs } == true,
                                "record \(index) attempted at \(attempt.startedAt) on a check at \(latest.map(String.init) ?? "never")")
                    }
                }
                // One set query per round, not one per record: the records of a round are checked
                // together (retries after a lost answer may add a round each on a loaded machine).
                #expect(checks.count >= 2 && checks.count * 5 <= 250, "\(checks.count) admission rounds for 250 records")
                await pool.shutdown()
            }
        }
    }

    @Test func aCheckThatWaitedOverASecondForItsConnectionIsAgedFromWhenItRan() async throws {
        // Every admission check queues 1.5 s for a connection (100 accounts' checks on 8
        // connections) and then reads the owner's state. Aged from when the pool asked, each
        // answer would be stale on arrival and the records checked again, forever; aged from
        // when it ran, the records go.
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let server = try fixture.sandbox(clock: clock)
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                let pool = try fixture.pool("p", api: api, ledger: MemoryTokenLedger(), clock: clock, options: TokenPoolOptions(maxTokens: 1))
                let start = clock.now()
                // Ending two minutes from now: if the checks never let them go, they end unsent, soon.
                let records = fixture.records(150, now: start).map {
                    CallRecord(caller: $0.caller, receiver: $0.receiver, startsAt: $0.startsAt, endsAt: start + 120_000, labelID: $0.labelID)
                }
                let admission = QueuedAdmission(clock: clock, waitMs: 1_500)
                let attempts = Attempts()
                let outcomes = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "150 records behind slow admission checks") {
                    await pool.send(records, admission: admission, onAttempt: attempts.append)
                }
                #expect(outcomes == Array(repeating: .accepted, count: 150))
                // Still no attempt on a check more than a second old (counted from when it ran).
                let checks = admission.checkedAt
                for attempt in attempts.all {
                    let latest = checks.filter { $0 <= attempt.startedAt }.max()
                    #expect(latest.map { attempt.startedAt - $0 <= TokenPool.admissionMaxAgeMs } == true)
                }
                await pool.shutdown()
            }
        }
    }

    @Test func optionsTheClientCannotHonourAreRefused() async throws {
        let fixture = Fixture()
        let ledger = MemoryTokenLedger()
        let api = APIClient(options: .init(baseURL: "http://127.0.0.1:1", connectTimeoutMs: 5_000, requestTimeoutMs: 10_000))
        #expect(throws: TokenPoolError.self) {
            _ = try fixture.pool("p", api: api, ledger: ledger, clock: ManualClock(start: 0))
        }
        try await api.shutdown()
    }

    @Test func underFaultsEveryRecordIsEventuallyAcceptedExactlyOnce() async throws {
        let fixture = Fixture()
        let clock = ManualClock(start: 1_900_000_000_000)
        let ledger = MemoryTokenLedger()
        // 10 % 5xx and 2 % resets (neither applied by the server), and 429 storms (2 s in, for 1 s).
        let server = try fixture.sandbox(
            clock: clock, faults: .init(seed: 7, errorRate: 0.1, resetRate: 0.02, stormEverySeconds: 2, stormLastingSeconds: 1)
        )
        try await server.withRunning { port in
            try await APIClient.withClient(options: Fixture.apiOptions(port: port)) { api in
                var options = TokenPoolOptions(maxTokens: 2)
                options.retryBaseMs = 50
                options.retryMaxMs = 1_000
                let pool = try fixture.pool("p", api: api, ledger: ledger, clock: clock, options: options)
                let attempts = Attempts()
                let outcomes = try await withSimulatedTime(on: clock, busy: { pool.isBusy }, "400 records through faults and storms") {
                    await pool.send(fixture.records(400, now: clock.now()), onAttempt: attempts.append)
                }
                #expect(outcomes.allSatisfy { $0 == .accepted })
                let stats = server.stats()
                // 5xx and resets are not applied by the sandbox, so only a lost answer — the client's own
                // timeout on a heavily loaded machine — may have applied a record that was then retried.
                let lostAnswers = attempts.all.filter {
                    if case .transient(let reason) = $0.outcome { reason.hasPrefix("timeout") } else { false }
                }.reduce(0) { $0 + $1.recordIndices.count }
                #expect(stats.accepted >= 400 && stats.accepted <= 400 + lostAnswers,
                        "none applied twice except after a lost answer (\(lostAnswers) timed out)")
                #expect(attempts.all.contains { if case .transient = $0.outcome { true } else { false } })
                #expect(stats.stormRefusals > 0, "the storm was met")
                #expect(attempts.all.contains { if case .rateLimited = $0.outcome { true } else { false } })
                await pool.shutdown()
            }
        }
    }
}
