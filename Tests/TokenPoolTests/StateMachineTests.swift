import CallRecordAPI
import Testing
import TokenPool

/// Counts events in every window `(t − window, t]`, t ranging over every event instant (the
/// count can only rise at an event, so this covers every window).
func maxInAnyWindow(_ instants: [Int64], window: Int64) -> Int {
    let sorted = instants.sorted()
    var best = 0
    var low = 0
    for high in sorted.indices {
        while sorted[low] <= sorted[high] - window { low += 1 }
        best = max(best, high - low + 1)
    }
    return best
}

/// Drives one pool at saturation: asks for a grant whenever one is possible, answers each send
/// `latency(i)` ms later, and returns (grant instant, answer instant) of every send until `until`.
func saturate(
    _ machine: inout TokenPoolStateMachine, from start: Int64, until end: Int64, latency: (Int) -> Int64 = { _ in 0 }
) -> [String: [(granted: Int64, answered: Int64)]] {
    var now = start
    var pending: [(at: Int64, fingerprint: String, id: UInt64, granted: Int64)] = []
    var sends: [String: [(granted: Int64, answered: Int64)]] = [:]
    var count = 0
    while now < end {
        // Deliver answers that are due.
        pending.sort { $0.at < $1.at }
        while let first = pending.first, first.at <= now {
            pending.removeFirst()
            _ = machine.completed(fingerprint: first.fingerprint, sendID: first.id, outcome: .accepted, now: first.at)
            sends[first.fingerprint, default: []].append((first.granted, first.at))
        }
        switch machine.grant(now: now) {
        case .send(let fingerprint, let id):
            pending.append((now + latency(count), fingerprint, id, now))
            count += 1
        case .wait(let until):
            now = min(until, pending.map(\.at).min() ?? until)
        case .waitForAnswer, .noToken:
            guard let next = pending.map(\.at).min() else { return sends }
            now = max(now, next)
        }
    }
    return sends
}

func pool(_ options: TokenPoolOptions = TokenPoolOptions(), tokens: [String], now: Int64 = 0) -> TokenPoolStateMachine {
    var machine = TokenPoolStateMachine(options: options)
    for fingerprint in tokens {
        machine.tokenAdded(fingerprint: fingerprint, expiresAt: now + 3_600_000, leaseExpiresAt: now + 3_600_000, now: now)
    }
    return machine
}

@Suite struct PacingTests {
    @Test func aCapOnRequestsInFlightHoldsTheNextUntilAnAnswer() {
        var machine = pool(tokens: ["a", "b"])
        guard case .send(let first, let id) = machine.grant(now: 0, cap: 2), case .send = machine.grant(now: 0, cap: 2) else {
            Issue.record("two grants expected")
            return
        }
        guard case .waitForAnswer = machine.grant(now: 0, cap: 2) else { Issue.record("a third under a cap of 2"); return }
        guard case .waitForAnswer = machine.grant(now: 0, cap: 0) else { Issue.record("a cap below 1 counts as 1"); return }
        _ = machine.completed(fingerprint: first, sendID: id, outcome: .accepted, now: 10)
        guard case .send = machine.grant(now: 10, cap: 2) else { Issue.record("a grant once one was answered"); return }
        guard case .send = machine.grant(now: 10) else { Issue.record("without a cap, the pool's own limit (256)"); return }
    }

    @Test func hundredthRequestInASecondIsAllowedAndTheHundredAndFirstDelayed() {
        var machine = pool(tokens: ["a"])
        var granted: [Int64] = []
        var now: Int64 = 0
        // Requests arrive as fast as the pool takes them; answers are instant.
        while granted.count < 100 {
            switch machine.grant(now: now) {
            case .send(let fingerprint, let id):
                granted.append(now)
                _ = machine.completed(fingerprint: fingerprint, sendID: id, outcome: .accepted, now: now)
            case .wait(let until):
                now = until
            default:
                Issue.record("unexpected grant")
                return
            }
        }
        #expect(granted.last! < 1_000, "the 100th request goes out within the first second")
        // The 101st, asked for within the same second, waits until the first left the window.
        guard case .wait(let until) = machine.grant(now: 995) else {
            Issue.record("the 101st request in a second was not delayed")
            return
        }
        #expect(until == 1_000)
        #expect(maxInAnyWindow(granted + [until], window: 1_000) == 100)
    }

    @Test func noWindowEverHoldsMoreThanTheLimitIncludingStartAndAfterIdle() {
        var machine = pool(tokens: ["a", "b", "c"])
        var all = saturate(&machine, from: 0, until: 3_000)
        // Idle for 7 s, then saturate again: no burst.
        let again = saturate(&machine, from: 10_000, until: 13_000)
        for (fingerprint, sends) in again { all[fingerprint, default: []] += sends }
        #expect(all.count == 3)
        for (_, sends) in all {
            #expect(maxInAnyWindow(sends.map(\.granted), window: 1_000) <= 100)
            #expect(maxInAnyWindow(sends.map(\.answered), window: 1_000) <= 100)
            // At full rate: 100 per second, 3 s + 3 s.
            #expect(sends.count >= 590 && sends.count <= 600)
        }
        // Right after idle, the first two grants of a token are one interval apart, not a burst.
        let after = again["a"]!.map(\.granted).sorted()
        #expect(after[1] - after[0] >= 10)
    }

    @Test func slowAnswersNeverLetTheServersWindowOverflow() {
        // Answers take 0–37 ms: a send may be counted anywhere between its grant and its answer,
        // so the guard uses the answer instant; both extremes stay within the limit.
        var machine = pool(tokens: ["a"])
        let sends = saturate(&machine, from: 0, until: 5_000, latency: { Int64(($0 * 7919) % 38) })["a"]!
        #expect(maxInAnyWindow(sends.map(\.granted), window: 1_000) <= 100)
        #expect(maxInAnyWindow(sends.map(\.answered), window: 1_000) <= 100)
        // Strongest form: the 101st send after any send starts only after that send's answer + 1 s.
        let ordered = sends.sorted { $0.granted < $1.granted }
        for index in ordered.indices.dropFirst(100) {
            let answersBefore = ordered[..<index].map(\.answered).sorted()
            let hundredthLatest = answersBefore[answersBefore.count - 100]
            #expect(ordered[index].granted >= hundredthLatest + 1_000)
        }
        #expect(sends.count >= 450, "latency costs little throughput")
    }

    @Test func anUnansweredSendKeepsCountingForAWindowAfterTheClientGaveUp() {
        // Send 0 is granted at 0 and times out at 4,000 ms without an answer. A loaded server may
        // still read it then, or a little later; the pool assumes up to one window later (5,000).
        var machine = pool(tokens: ["a"])
        guard case .send(_, let lost) = machine.grant(now: 0) else { Issue.record("no grant"); return }
        _ = machine.completed(fingerprint: "a", sendID: lost, outcome: .transient(reason: "timeout"), answered: false, now: 4_000)
        // Saturate from 4,500 ms with instant answers.
        var granted: [Int64] = []
        var now: Int64 = 4_500
        while granted.count < 200 {
            switch machine.grant(now: now) {
            case .send(_, let id):
                granted.append(now)
                _ = machine.completed(fingerprint: "a", sendID: id, outcome: .accepted, now: now)
            case .wait(let until): now = until
            default: Issue.record("unexpected grant"); return
            }
        }
        #expect(maxInAnyWindow(granted + [5_000], window: 1_000) <= 100, "counted at its latest, the lost send still fits")
        #expect(granted[99] == 5_500, "one grant gave way to the lost send's slot")
    }

    @Test func batchLimitIsSixtyPerMinute() {
        var machine = pool(.batch(maxTokens: 2), tokens: ["a"])
        let sends = saturate(&machine, from: 0, until: 180_000)["a"]!
        #expect(maxInAnyWindow(sends.map(\.granted), window: 60_000) == 60)
        #expect(sends.count == 180)
    }

    @Test func theTokenFreeSoonestIsChosen() {
        var machine = pool(tokens: ["a", "b"])
        guard case .send(let first, _) = machine.grant(now: 0), case .send(let second, _) = machine.grant(now: 0) else {
            Issue.record("two tokens should give two immediate grants")
            return
        }
        #expect(first != second)
        #expect(machine.grant(now: 0) == .wait(until: 10))
    }

    @Test func inFlightIsBounded() {
        var options = TokenPoolOptions()
        options.maxInFlight = 2
        var machine = pool(options, tokens: ["a", "b", "c"])
        _ = machine.grant(now: 0)
        _ = machine.grant(now: 0)
        #expect(machine.grant(now: 0) == .waitForAnswer)
        #expect(machine.inFlight == 2)
    }

    @Test func aTokenIsNotUsedWhenItsLeaseCouldLapseDuringARequest() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        machine.tokenAdded(fingerprint: "a", expiresAt: 3_600_000, leaseExpiresAt: 15_000, now: 0)
        #expect(machine.grant(now: 9_999) != .noToken)
        #expect(machine.grant(now: 10_000) == .noToken, "lease 15 s, request timeout 5 s")
        machine.leaseRenewed(fingerprint: "a", leaseExpiresAt: 25_000)
        #expect(machine.grant(now: 10_000) == .wait(until: 10_009), "a renewed lease makes the token usable again")
    }
}

@Suite struct AdaptationTests {
    @Test func a429SlowsTheTokenAndItRecoversAdditively() {
        var machine = pool(tokens: ["a"])
        guard case .send(_, let id) = machine.grant(now: 0) else { Issue.record("no grant"); return }
        _ = machine.completed(fingerprint: "a", sendID: id, outcome: .rateLimited(retryAfterMs: nil), now: 1)
        #expect(machine.tokens["a"]!.pacer.rateFactor == 0.5)
        // Next grant one slowed interval (20 ms) after the 429.
        #expect(machine.grant(now: 5) == .wait(until: 21))
        guard case .send(_, let id2) = machine.grant(now: 21) else { Issue.record("no grant"); return }
        _ = machine.completed(fingerprint: "a", sendID: id2, outcome: .accepted, now: 21)
        #expect(machine.grant(now: 22) == .wait(until: 41), "still half rate")
        // Additive recovery: 0.1 per second; after 5 s it is back to full rate.
        guard case .send = machine.grant(now: 5_021) else { Issue.record("no grant"); return }
        #expect(machine.tokens["a"]!.pacer.rateFactor == 1)
    }

    @Test func repeated429sReachTheFloor() {
        var machine = pool(tokens: ["a"])
        var now: Int64 = 0
        for _ in 0..<10 {
            while true {
                if case .send(_, let id) = machine.grant(now: now) {
                    _ = machine.completed(fingerprint: "a", sendID: id, outcome: .rateLimited(retryAfterMs: nil), now: now)
                    break
                }
                if case .wait(let until) = machine.grant(now: now) { now = until }
            }
        }
        #expect(machine.tokens["a"]!.pacer.rateFactor >= 0.1)
        #expect(machine.tokens["a"]!.pacer.rateFactor < 0.11)
    }

    @Test func retryAfterIsHonoured() {
        var machine = pool(tokens: ["a"])
        guard case .send(_, let id) = machine.grant(now: 0) else { Issue.record("no grant"); return }
        _ = machine.completed(fingerprint: "a", sendID: id, outcome: .rateLimited(retryAfterMs: 2_000), now: 3)
        #expect(machine.grant(now: 100) == .wait(until: 2_003))
    }

    @Test func unauthorizedDropsTheTokenAndAsksForAReplacement() {
        var machine = pool(tokens: ["a"])
        guard case .send(_, let id) = machine.grant(now: 0) else { Issue.record("no grant"); return }
        let action = machine.completed(fingerprint: "a", sendID: id, outcome: .unauthorized, now: 2)
        #expect(action == .drop(fingerprint: "a", reason: "the API answered 401 (revoked or expired)"))
        #expect(machine.grant(now: 2) == .noToken)
        #expect(machine.tick(now: 2, queued: 1) == [.acquire])
        #expect(machine.tick(now: 3, queued: 1) == [], "one acquisition at a time")
    }
}

@Suite struct RetryTests {
    @Test func transientFailuresBackOffExponentiallyWithJitterUntilEndsAt() {
        let policy = RetryPolicy(baseMs: 200, maxMs: 30_000)
        var jitter = JitterSource(seed: 42)
        var now: Int64 = 0
        var delays: [Int64] = []
        var failures = 0
        let endsAt: Int64 = 120_000
        while true {
            failures += 1
            switch policy.decide(outcome: .transient(reason: "HTTP 503"), failures: failures, endsAt: endsAt, now: now, jitter: &jitter) {
            case .retry(let at):
                delays.append(at - now)
                now = at
            case .final(let outcome):
                #expect(outcome == .expired(lastReason: "transient: HTTP 503"))
                #expect(now < endsAt)
                // Every delay within [ceiling/2, ceiling], ceiling = min(30 s, 200 ms × 2^(n−1)).
                for (index, delay) in delays.enumerated() {
                    let ceiling = min(30_000, 200 * (Int64(1) << index))
                    #expect(delay >= ceiling / 2 && delay <= ceiling)
                }
                #expect(delays.count >= 8)
                return
            }
        }
    }

    @Test func jitterIsDeterministicForASeed() {
        let policy = RetryPolicy()
        var a = JitterSource(seed: 7)
        var b = JitterSource(seed: 7)
        let first = (1...6).map { policy.backoff(failures: $0, jitter: &a) }
        let second = (1...6).map { policy.backoff(failures: $0, jitter: &b) }
        #expect(first == second)
        #expect(Set(first).count > 1)
    }

    @Test func rejectedIsFinalAnd429RetriesAfterRetryAfter() {
        let policy = RetryPolicy()
        var jitter = JitterSource(seed: 1)
        #expect(policy.decide(outcome: .rejected(reason: "Invalid input"), failures: 0, endsAt: 10_000, now: 0, jitter: &jitter)
            == .final(.rejected(reason: "Invalid input")))
        #expect(policy.decide(outcome: .accepted, failures: 0, endsAt: 10_000, now: 0, jitter: &jitter) == .final(.accepted))
        #expect(policy.decide(outcome: .rateLimited(retryAfterMs: 1_500), failures: 0, endsAt: 10_000, now: 100, jitter: &jitter)
            == .retry(at: 1_600))
        #expect(policy.decide(outcome: .rateLimited(retryAfterMs: 20_000), failures: 0, endsAt: 10_000, now: 100, jitter: &jitter)
            == .final(.expired(lastReason: "rate limited, retry after 20000 ms")))
        #expect(policy.decide(outcome: .unauthorized, failures: 0, endsAt: 10_000, now: 100, jitter: &jitter) == .retry(at: 100))
    }
}

@Suite struct TokenLifecycleTests {
    @Test func refreshIsDueFiveMinutesBeforeExpiryAndTheOldTokenServesUntilThen() {
        // A pool that never goes idle (an idle one releases its tokens instead of refreshing them).
        var options = TokenPoolOptions()
        options.idleReleaseMs = .max
        var machine = TokenPoolStateMachine(options: options)
        machine.tokenAdded(fingerprint: "a", expiresAt: 3_600_000, leaseExpiresAt: 3_600_000, now: 0)
        #expect(machine.nextTickDue(now: 0) == 3_300_000)
        #expect(machine.tick(now: 3_299_999, queued: 0) == [])
        #expect(machine.tick(now: 3_300_000, queued: 0) == [.refresh(fingerprint: "a")])
        #expect(machine.tick(now: 3_300_001, queued: 0) == [], "asked once")
        // Still usable while the replacement is minted: no gap.
        if case .send = machine.grant(now: 3_400_000) {} else { Issue.record("the old token must serve until it expires") }
        machine.tokenAdded(fingerprint: "b", expiresAt: 6_900_000, leaseExpiresAt: 6_900_000, now: 3_400_000)
        // Dropped once a request could outlive it.
        #expect(machine.tick(now: 3_595_000, queued: 0) == [.drop(fingerprint: "a", reason: "the token expires")])
        #expect(machine.usableTokens(now: 3_595_000) == ["b"])
    }

    @Test func thePoolGrowsOnlyWhileDemandNeedsItUpToMax() {
        var options = TokenPoolOptions()
        options.maxTokens = 2
        var machine = pool(options, tokens: ["a"])
        #expect(machine.tick(now: 0, queued: 100) == [], "one token sends 100 in the horizon")
        #expect(machine.tick(now: 0, queued: 101) == [.acquire])
        machine.tokenAdded(fingerprint: "b", expiresAt: 3_600_000, leaseExpiresAt: 3_600_000, now: 0)
        #expect(machine.tick(now: 1, queued: 10_000) == [], "at tokens.max")
    }

    @Test func theAccountsTokensWhereverHeldAreSizedToItsDemandAndCappedAtMax() {
        var options = TokenPoolOptions()
        options.maxTokens = 4
        // Holding one token, with two more leased elsewhere: 250 records need three in the
        // horizon, which the account has, so no growth mint; 301 need a fourth.
        var holding = pool(options, tokens: ["a"])
        holding.backlogChanged(250)
        let covered = holding.mayMint(elsewhere: 2, now: 0)
        #expect(!covered)
        #expect(holding.acquireBlockedUntil == TokenPoolStateMachine.growthRecheckMs, "asked again after the recheck interval")
        holding.backlogChanged(301)
        let short = holding.mayMint(elsewhere: 2, now: 10_000)
        #expect(short)
        // Warming up counts as demand for the tokens wanted.
        let warming = holding.mayMint(elsewhere: 0, now: 20_000, atLeast: 3)
        #expect(warming)
        // Whatever the demand, the account holds at most tokens.max, counted across instances;
        // an instance with none may mint while the account is below it.
        holding.backlogChanged(100_000)
        let capped = holding.mayMint(elsewhere: 3, now: 30_000)
        #expect(!capped)
        var empty = TokenPoolStateMachine(options: options)
        empty.backlogChanged(1)
        let first = empty.mayMint(elsewhere: 3, now: 0)
        #expect(first, "an instance without a token gets one while the account is below tokens.max")
        let none = empty.mayMint(elsewhere: 4, now: 0)
        #expect(!none)
        #expect(empty.capacity(now: 0, recordsPerRequest: 1) == 0, "no token: nothing may be claimed")
        #expect(holding.capacity(now: 0, recordsPerRequest: 1) == 100)
        #expect(holding.capacity(now: 0, recordsPerRequest: 500) == 50_000)
    }

    @Test func aRefusedMintIsRetriedWithinSecondsSoAStoredTokenFreedMeanwhileIsLeased() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        #expect(machine.tick(now: 0, queued: 1) == [.acquire])
        // The budget's next mint is in 20 minutes; the pool looks for a stored token again in 5 s.
        #expect(machine.mintRefused(nextMintAt: 1_200_000, now: 0) == TokenPoolStateMachine.growthRecheckMs)
        #expect(machine.tick(now: TokenPoolStateMachine.growthRecheckMs - 1, queued: 1) == [])
        #expect(machine.tick(now: TokenPoolStateMachine.growthRecheckMs, queued: 1) == [.acquire])
        #expect(machine.mintRefused(nextMintAt: 6_000, now: 5_000) == 6_000, "a sooner mint is not waited past")
    }

    @Test func aTokenTakenOverFromAnotherHolderWaitsOneWindowPastItsLastSend() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        // The previous holder released it at 10,000: its last sends may sit in (9,000, 10,000].
        machine.tokenAdded(fingerprint: "a", expiresAt: 3_600_000, leaseExpiresAt: 60_000, quietSince: 10_000, now: 10_200)
        #expect(machine.grant(now: 10_200) == .wait(until: 11_000))
        guard case .send = machine.grant(now: 11_000) else { Issue.record("granted once the window passed"); return }
        // A token no one held before (just minted) goes at once.
        var fresh = TokenPoolStateMachine(options: TokenPoolOptions())
        fresh.tokenAdded(fingerprint: "b", expiresAt: 3_600_000, leaseExpiresAt: 60_000, now: 10_200)
        guard case .send = fresh.grant(now: 10_200) else { Issue.record("a fresh token goes at once"); return }
    }

    @Test func statusPollsArePacedPerTokenApartFromItsPushes() {
        // Batch: 60 pushes a minute per token; its status polls at 100 a second, on their own pacer.
        var machine = pool(.batch(maxTokens: 1), tokens: ["a"])
        guard case .send("a", let push) = machine.grant(now: 0) else { Issue.record("a push"); return }
        _ = machine.completed(fingerprint: "a", sendID: push, outcome: .accepted, now: 5)
        guard case .send("a", let poll) = machine.grant(fingerprint: "a", now: 5) else { Issue.record("a poll"); return }
        #expect(machine.inFlight == 1)
        #expect(machine.grant(fingerprint: "a", now: 5) == .wait(until: 15), "the next poll waits 10 ms (100/s)")
        machine.statusCompleted(fingerprint: "a", sendID: poll, answered: true, now: 8)
        #expect(machine.inFlight == 0)
        #expect(machine.grant(now: 8) == .wait(until: 1_000), "a poll takes nothing from the pushes' 60 a minute")
        #expect(machine.grant(fingerprint: "gone", now: 20) == .noToken, "a dropped token is not polled with")
        var short = TokenPoolStateMachine(options: TokenPoolOptions())
        short.tokenAdded(fingerprint: "a", expiresAt: 3_600_000, leaseExpiresAt: 1_000, now: 0)
        #expect(short.grant(fingerprint: "a", now: 0) == .noToken, "nor one whose lease could lapse during the request")
    }

    @Test func aLapsedLeaseDropsTheToken() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        machine.tokenAdded(fingerprint: "a", expiresAt: 3_600_000, leaseExpiresAt: 15_000, now: 0)
        #expect(machine.leasesToRenew(now: 4_000) == [])
        #expect(machine.leasesToRenew(now: 6_000) == ["a"])
        #expect(machine.tick(now: 15_000, queued: 0) == [.drop(fingerprint: "a", reason: "the lease lapsed")])
    }

    @Test func aLeaseHeldElsewhereIsWatchedForARenewalBeforeMinting() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        // First sight at 0: watched for the observation period (or until it lapses, if sooner).
        #expect(machine.leasedElsewhere([("a", 60_000), ("b", 10_000)], now: 0, observationMs: 21_500) == 10_000)
        // At 10,001 b's lease is gone from the list (it lapsed and b was leased, or it expired); a
        // stayed put through the observation period: wait for it to lapse.
        #expect(machine.leasedElsewhere([("a", 60_000)], now: 10_001, observationMs: 21_500) == 21_500)
        #expect(machine.leasedElsewhere([("a", 60_000)], now: 21_500, observationMs: 21_500) == 60_000)
        // A renewed lease has a live holder: ignored, so with nothing else to wait for, mint.
        #expect(machine.leasedElsewhere([("a", 80_000)], now: 30_000, observationMs: 21_500) == nil)
        #expect(machine.leasedElsewhere([("a", 80_000), ("c", 90_000)], now: 30_000, observationMs: 21_500) == 51_500)
    }

    @Test func refusedAcquisitionWaitsForTheBudget() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        #expect(machine.tick(now: 0, queued: 1) == [.acquire])
        machine.acquireFailed(retryAt: 500_000)
        #expect(machine.tick(now: 499_999, queued: 1) == [])
        #expect(machine.tick(now: 500_000, queued: 1) == [.acquire])
    }

    @Test func demandIsTheSendsPlusTheBacklogAndAnEndedSendStopsGrowth() {
        var options = TokenPoolOptions()
        options.maxTokens = 3
        var machine = pool(options, tokens: ["a"])
        machine.demandChanged(sending: 60)
        #expect(machine.tick(now: 0) == [], "60 records: one token sends them in the horizon")
        machine.backlogChanged(41)
        #expect(machine.demand == 101)
        #expect(machine.tick(now: 0) == [.acquire], "the owner's queue counts too")
        machine.tokenAdded(fingerprint: "b", expiresAt: 3_600_000, leaseExpiresAt: 3_600_000, now: 0)
        machine.demandChanged(sending: nil)
        #expect(machine.sending == 60, "nil keeps the last known demand")
        machine.demandChanged(sending: 0)
        machine.backlogChanged(-5)
        #expect(machine.demand == 0)
        #expect(machine.tick(now: 1) == [], "an idle pool does not grow")
    }

    @Test func oneHousekeepingRoundAtATimeAndNoneOnceClosed() {
        var machine = pool(TokenPoolOptions(), tokens: ["a"])
        let first = machine.beginMaintenance(sending: 5)
        #expect(first)
        let second = machine.beginMaintenance(sending: 9)
        #expect(!second, "a second round while one runs")
        #expect(machine.sending == 5, "the refused round changed nothing")
        machine.endMaintenance()
        let afterwards = machine.beginMaintenance(sending: nil)
        #expect(afterwards)
        machine.endMaintenance()
        #expect(machine.close() == ["a"])
        let closedRound = machine.beginMaintenance(sending: 1)
        #expect(!closedRound)
    }

    @Test func aClosedPoolAcquiresNothingAndRefusesATokenThatArrivesLate() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        #expect(machine.tick(now: 0, queued: 1) == [.acquire])
        // The pool closes while the acquisition is out: the token it brings back is not taken.
        #expect(machine.close() == [])
        let taken = machine.tokenAdded(fingerprint: "late", expiresAt: 3_600_000, leaseExpiresAt: 60_000, now: 10)
        #expect(!taken)
        #expect(machine.tokens.isEmpty)
        #expect(!machine.acquiring)
        #expect(machine.tick(now: 20, queued: 1_000) == [])
        let closedStart = machine.startAcquisition(now: 20)
        #expect(!closedStart)
    }

    @Test func anAcquisitionThatFailedOnAnErrorIsRetriedFiveSecondsLater() {
        var machine = TokenPoolStateMachine(options: TokenPoolOptions())
        let started = machine.startAcquisition(now: 1_000)
        #expect(started)
        let again = machine.startAcquisition(now: 1_000)
        #expect(!again, "one at a time")
        #expect(machine.acquireErrored(now: 2_000) == 7_000)
        let early = machine.startAcquisition(now: 6_999)
        #expect(!early)
        #expect(machine.tick(now: 6_999, queued: 1) == [])
        #expect(machine.tick(now: 7_000, queued: 1) == [.acquire])
    }

    @Test func aLeaseThatCouldNotBeRenewedIsLostAndTheRenewedOnesLastAFullLease() {
        var options = TokenPoolOptions()
        options.leaseMs = 60_000
        var machine = TokenPoolStateMachine(options: options)
        for fingerprint in ["a", "b", "c"] {
            machine.tokenAdded(fingerprint: fingerprint, expiresAt: 3_600_000, leaseExpiresAt: 60_000, now: 0)
        }
        let asked = machine.leasesToRenew(now: 25_000)
        #expect(asked == ["a", "b", "c"])
        #expect(machine.leasesRenewed(["a", "c"], of: asked, now: 25_000) == ["b"])
        #expect(machine.tokens.keys.sorted() == ["a", "c"])
        #expect(machine.tokens["a"]?.leaseExpiresAt == 85_000)
        #expect(machine.leasesToRenew(now: 30_000) == [])
    }
}

@Suite struct BudgetTests {
    @Test func theEleventhMintInThirtyMinutesIsRefusedWithTheInstantOfTheNext() {
        let budget = MintBudget()
        let mints: [Int64] = (0..<10).map { Int64($0) * 60_000 }
        #expect(budget.decide(recentMints: Array(mints.prefix(9)), now: 600_000) == .allowed)
        #expect(budget.decide(recentMints: mints, now: 600_000) == .refused(nextAt: 1_800_000))
        #expect(budget.decide(recentMints: mints, now: 1_799_999) == .refused(nextAt: 1_800_000))
        #expect(budget.decide(recentMints: mints, now: 1_800_000) == .allowed)
        // A mint another instance recorded at a later instant counts too (clocks differ).
        #expect(budget.decide(recentMints: mints.map { $0 + 700_000 }, now: 600_000) == .refused(nextAt: 2_500_000))
        // Mints outside the window do not count.
        #expect(budget.decide(recentMints: mints.map { $0 - 5_000_000 }, now: 0) == .allowed)
    }

    @Test func tokensMaxTheBudgetCannotSustainIsRefused() throws {
        var options = TokenPoolOptions()
        #expect(options.sustainableTokens == 18)
        options.maxTokens = 18
        try options.validate()
        options.maxTokens = 19
        #expect(throws: TokenPoolError.self) { try options.validate() }
        do {
            try options.validate()
        } catch {
            #expect(error.description.contains("keeps at most 18 tokens valid"))
        }
    }

    @Test func aLeaseTooShortToRenewBeforeItsTokensStopBeingUsableIsRefused() throws {
        // Renewed after a third of 45 s (30 s left), but unusable once 30 s or less remain: every
        // token would stop being used just before its renewal, and the pool would mint more.
        #expect(throws: TokenPoolError.self) { try TokenPoolOptions(leaseMs: 45_000, requestTimeoutMs: 30_000).validate() }
        try TokenPoolOptions(leaseMs: 46_000, requestTimeoutMs: 30_000).validate()
        try TokenPoolOptions().validate()
    }
}
