// One HTTP attempt of the token pool: a real-time push of one record, or a batch of up to 500
// polled until every record's status is final. The answer goes to the state machine (pacing,
// a 401's drop) before the batch is polled, and comes back to `send` as an event.

import CallRecordAPI
import Foundation
import Planning
import Synchronization

extension TokenPool {
    /// One HTTP attempt (real-time: one record; batch: up to 500, polled until final). The pacer
    /// learns of the answer as soon as it arrives (before a batch is polled); a 401 drops the
    /// token here and marks it revoked in the store.
    /// `grantedAt` is the attempt's start as the pool decided it (the instant its pacing and
    /// admission were checked), a moment before the request leaves.
    func attempt(_ batch: [CallRecord], indices: [Int], token: BearerToken, sendID: UInt64, grantedAt: Int64) async -> Event {
        let id = base.clientAccountID
        let startedAt = grantedAt
        let outcome: PushOutcome
        let httpStatus: Int?
        var batchID: UUID?
        switch base.transport {
        case .v1, .v2:
            let result = await api.push(batch[0], transport: base.transport == .v1 ? .v1 : .v2, token: token, clientAccountID: id)
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
        // Polled with the same token, paced by its status pacer, and only while the pool may still
        // use it (held, leased, not expiring).
        let statuses = await api.batchOutcomes(
            batchID: batchID, records: batch, token: token, clientAccountID: base.clientAccountID, clock: clock,
            gate: gate(for: token.fingerprint), logger: logger)
        // The audit records what became of each record of the batch, not the batch request's 200.
        var decided = attempt
        decided.recordOutcomes = statuses
        return .answered(results: Array(zip(indices, statuses)).map { (index: $0.0, outcome: $0.1) }, attempt: decided)
    }

    /// The gate of a batch's status polls with `fingerprint`: each waits for the token's status
    /// pacer, and none is made once the pool may not use the token.
    func gate(for fingerprint: String) -> RequestGate {
        RequestGate(
            enter: { [self] in
                while !Task.isCancelled {
                    let now = clock.now()
                    switch state.withLock({ $0.machine.grant(fingerprint: fingerprint, now: now) }) {
                    case .send(_, let sendID):
                        return sendID
                    case .noToken:
                        return nil
                    case .wait(let until):
                        do { try await clock.sleep(until: until) } catch { return nil }
                    case .waitForAnswer:
                        do { try await clock.sleep(until: now + 20) } catch { return nil }
                    }
                }
                return nil
            },
            leave: { [self] sendID, answered in
                state.withLock { $0.machine.statusCompleted(fingerprint: fingerprint, sendID: sendID, answered: answered, now: clock.now()) }
            })
    }
}
