import CallRecordAPI
import Testing
import TokenPool

/// The next action other than `.again` (at most 100 steps, so a loop in the queue fails the test).
private func step(
    _ queue: inout SendQueue, now: Int64, cancelled: Bool = false,
    grant: (Int64) -> TokenPoolStateMachine.Grant = { _ in .send(fingerprint: "a", sendID: 1) }
) -> SendQueue.Action? {
    for _ in 0..<100 {
        let action = queue.next(now: now, cancelled: cancelled, acquireBlockedUntil: { .min }, grant: grant)
        if action != .again { return action }
    }
    Issue.record("the queue kept answering .again")
    return nil
}

/// Runs the queue's round at `now` to its first `.sleep` or `.finished`, ending each housekeeping
/// and timer it asks for at once (at most 20 steps).
private func drive(
    _ queue: inout SendQueue, now: Int64, blockedUntil: Int64, grant: (Int64) -> TokenPoolStateMachine.Grant
) -> SendQueue.Action? {
    for _ in 0..<20 {
        let action = queue.next(now: now, cancelled: false, acquireBlockedUntil: { blockedUntil }, grant: grant)
        switch action {
        case .maintain: queue.maintained()
        case .sleep: queue.timerFired(); return action
        case .finished: return action
        default: continue
        }
    }
    Issue.record("the queue neither slept nor finished")
    return nil
}

private let noRetry: @Sendable (PushOutcome, Int, Int64) -> RetryDecision = { outcome, _, _ in
    switch outcome {
    case .accepted: .final(.accepted)
    case .rejected(let reason): .final(.rejected(reason: reason))
    default: .retry(at: 1_500)
    }
}

@Suite struct SendQueueTests {
    @Test func recordsGoOutOneBatchPerGrantAndExpiredOnesNever() {
        // Record 1 ends at 50: expired at 100, never in a batch.
        var queue = SendQueue(endsAt: [10_000, 50, 10_000, 10_000], batchSize: 2, checksAdmission: false,
                              maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 100) == .send(indices: [0, 2], fingerprint: "a", sendID: 1, grantedAt: 100))
        #expect(step(&queue, now: 100) == .send(indices: [3], fingerprint: "a", sendID: 1, grantedAt: 100))
        #expect(queue.running == 2)
        #expect(step(&queue, now: 100) == .maintain(queued: 0))
        queue.answered([(0, .accepted), (2, .rejected(reason: "Invalid input"))], at: 120, decide: noRetry)
        queue.answered([(3, .accepted)], at: 130, decide: noRetry)
        #expect(step(&queue, now: 130) == .finished([.accepted, .expired(lastReason: "not sent"), .rejected(reason: "Invalid input"), .accepted]))
    }

    @Test func aTransientFailureWaitsForItsBackOffThenGoesAgain() {
        var queue = SendQueue(endsAt: [10_000], batchSize: 1, checksAdmission: false, maintenanceIntervalMs: 60_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        #expect(step(&queue, now: 0) == .maintain(queued: 0))
        #expect(step(&queue, now: 0) == .awaitEvent)
        queue.answered([(0, .transient(reason: "HTTP 503"))], at: 10, decide: noRetry)
        queue.maintained()
        // Retry at 1,500 (noRetry's back-off): nothing to send before, a timer for it.
        #expect(step(&queue, now: 10) == .sleep(until: 1_500))
        #expect(step(&queue, now: 10) == .awaitEvent)
        queue.timerFired()
        #expect(step(&queue, now: 1_500) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 1_500))
        #expect(step(&queue, now: 1_500) == .awaitEvent)
        queue.answered([(0, .accepted)], at: 1_520, decide: { _, failures, _ in
            #expect(failures == 1, "the transient failure was counted")
            return .final(.accepted)
        })
        #expect(step(&queue, now: 1_520) == .finished([.accepted]))
    }

    @Test func housekeepingIsAskedForOncePerIntervalAndItsDueTimeWakesTheQueue() {
        var queue = SendQueue(endsAt: [100_000], batchSize: 1, checksAdmission: false, maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        #expect(step(&queue, now: 0) == .maintain(queued: 0))
        #expect(step(&queue, now: 0) == .awaitEvent)
        queue.maintained()
        queue.answered([(0, .transient(reason: "HTTP 503"))], at: 10, decide: noRetry)
        // The retry is due at 1,500, the next housekeeping at 1,000: the earlier wakes the queue.
        #expect(step(&queue, now: 10) == .sleep(until: 1_000))
        #expect(step(&queue, now: 10) == .awaitEvent)
        queue.timerFired()
        #expect(step(&queue, now: 1_000) == .maintain(queued: 1))
    }

    @Test func noRecordGoesOutOnAStaleAdmissionAndWithdrawnOnesEndWithTheirReason() {
        var queue = SendQueue(endsAt: Array(repeating: 100_000, count: 4), batchSize: 1, checksAdmission: true,
                              maintenanceIntervalMs: 60_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .admit([0, 1, 2, 3]))
        queue.admitted([0, 1, 2, 3], withdrawn: [1: "campaign paused"], at: 0)
        #expect(step(&queue, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        #expect(step(&queue, now: 1_000) == .send(indices: [2], fingerprint: "a", sendID: 1, grantedAt: 1_000))
        // At 1,001 the check of record 3 is more than a second old: asked again before it goes.
        #expect(step(&queue, now: 1_001) == .maintain(queued: 1))
        #expect(step(&queue, now: 1_001) == .admit([3]))
        queue.admitted([3], withdrawn: [3: "receiver removed"], at: 1_001)
        queue.answered([(0, .accepted)], at: 1_100, decide: noRetry)
        queue.answered([(2, .accepted)], at: 1_100, decide: noRetry)
        #expect(step(&queue, now: 1_100) == .finished([
            .accepted, .withdrawn(reason: "campaign paused"), .accepted, .withdrawn(reason: "receiver removed"),
        ]))
    }

    @Test func aRecordWaitingForARetryIsCheckedAgainBeforeItGoes() {
        var queue = SendQueue(endsAt: [100_000], batchSize: 1, checksAdmission: true, maintenanceIntervalMs: 60_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .admit([0]))
        queue.admitted([0], withdrawn: [:], at: 0)
        #expect(step(&queue, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        #expect(step(&queue, now: 0) == .maintain(queued: 0))
        #expect(step(&queue, now: 0) == .awaitEvent)
        queue.answered([(0, .transient(reason: "timeout"))], at: 200, decide: noRetry)
        #expect(step(&queue, now: 200) == .sleep(until: 1_500))
        #expect(step(&queue, now: 200) == .awaitEvent)
        queue.timerFired()
        #expect(step(&queue, now: 1_500) == .admit([0]))
        queue.admitted([0], withdrawn: [0: "campaign cancelled"], at: 1_500)
        #expect(step(&queue, now: 1_500) == .finished([.withdrawn(reason: "campaign cancelled")]))
    }

    @Test func withoutATokenItAsksForHousekeepingAndWakesNoSoonerThanAcquisitionMayRetry() {
        var queue = SendQueue(endsAt: [100_000], batchSize: 1, checksAdmission: false, maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        let none: (Int64) -> TokenPoolStateMachine.Grant = { _ in .noToken }
        #expect(queue.next(now: 0, cancelled: false, acquireBlockedUntil: { 5_000 }, grant: none) == .maintain(queued: 1))
        #expect(queue.next(now: 0, cancelled: false, acquireBlockedUntil: { 5_000 }, grant: none) == .sleep(until: 5_000))
        #expect(queue.next(now: 0, cancelled: false, acquireBlockedUntil: { 5_000 }, grant: none) == .awaitEvent)
    }

    @Test func recordsThatCannotGetATokenSoonAreReturnedUnsentNotHeld() {
        // The budget blocks acquisition for a minute: the records go back at once, the one in
        // back-off no sooner than its retry, so an instance with tokens can send them.
        var queue = SendQueue(endsAt: [100_000, 100_000], batchSize: 1, checksAdmission: false, maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        #expect(step(&queue, now: 0) == .send(indices: [1], fingerprint: "a", sendID: 1, grantedAt: 0))
        queue.answered([(0, .transient(reason: "HTTP 503")), (1, .transient(reason: "HTTP 503"))], at: 10, decide: { _, _, _ in .retry(at: 3_000) })
        queue.answered([], at: 10, decide: noRetry)
        let none: (Int64) -> TokenPoolStateMachine.Grant = { _ in .noToken }
        let reason = "no token to send it with for the next 60 s (mint budget used up, or the account's tokens held elsewhere)"
        #expect(drive(&queue, now: 10, blockedUntil: .min, grant: none) == .sleep(until: 1_010), "the round of the sends ends")
        #expect(drive(&queue, now: 3_000, blockedUntil: 63_000, grant: none)
            == .finished([.returned(reason: reason, retryAt: 3_000), .returned(reason: reason, retryAt: 3_000)]))

        // Without a token for five seconds, although acquisition may be tried again at any moment.
        var waiting = SendQueue(endsAt: [100_000], batchSize: 1, checksAdmission: false, maintenanceIntervalMs: 60_000, admissionMaxAgeMs: 1_000)
        #expect(drive(&waiting, now: 0, blockedUntil: .min, grant: none) == .sleep(until: 100))
        #expect(drive(&waiting, now: 4_999, blockedUntil: .min, grant: none) == .sleep(until: 5_099))
        #expect(drive(&waiting, now: 5_000, blockedUntil: .min, grant: none)
            == .finished([.returned(reason: "no token to send it with for 5 s", retryAt: 5_000)]))
    }

    @Test func cancelledWithNothingOutEveryUnsettledRecordIsUnsent() {
        var queue = SendQueue(endsAt: [100_000, 100_000], batchSize: 1, checksAdmission: false, maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        // Cancelled while record 0 is out: nothing new is granted, the queue waits for the answer.
        #expect(step(&queue, now: 0, cancelled: true) == .maintain(queued: 1))
        #expect(step(&queue, now: 0, cancelled: true) == .awaitEvent)
        queue.answered([(0, .transient(reason: "timeout"))], at: 50, decide: noRetry)
        #expect(step(&queue, now: 50, cancelled: true) == .finished([.unsent(lastReason: "transient: timeout"), .unsent(lastReason: "not sent")]))
    }

    @Test func recordsGivenBackGoOutAgainAndOnesThatExpiredMeanwhileEnd() {
        var queue = SendQueue(endsAt: [100, 100_000], batchSize: 500, checksAdmission: false, maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        #expect(step(&queue, now: 0) == .send(indices: [0, 1], fingerprint: "a", sendID: 1, grantedAt: 0))
        queue.returned([0, 1])
        #expect(queue.running == 0)
        // At 200 record 0 has expired; record 1 still goes.
        #expect(step(&queue, now: 200) == .send(indices: [1], fingerprint: "a", sendID: 1, grantedAt: 200))
        var alone = SendQueue(endsAt: [100], batchSize: 500, checksAdmission: false, maintenanceIntervalMs: 1_000, admissionMaxAgeMs: 1_000)
        #expect(step(&alone, now: 0) == .send(indices: [0], fingerprint: "a", sendID: 1, grantedAt: 0))
        alone.returned([0])
        #expect(step(&alone, now: 200) == .finished([.expired(lastReason: "not sent")]))
    }
}
