public import Foundation
public import Logging
public import Planning

/// Admits the requests made with one token outside the pool's own sends (a batch's status
/// polls), so they are paced like every other request of the token and stop when it may no
/// longer be used. `enter` waits for a grant and returns its ticket, or `nil` when the token may
/// not be used any more; `leave` reports the end of the request, `answered` when the server
/// answered it (false: a timeout or reset, which the server may still count later).
public struct RequestGate: Sendable {
    let enter: @Sendable () async -> UInt64?
    let leave: @Sendable (_ ticket: UInt64, _ answered: Bool) -> Void

    /// A gate from the two steps.
    public init(enter: @escaping @Sendable () async -> UInt64?, leave: @escaping @Sendable (_ ticket: UInt64, _ answered: Bool) -> Void) {
        self.enter = enter
        self.leave = leave
    }

    /// Admits every request at once (no pacing): for tests and tools outside a token pool.
    public static let open = RequestGate(enter: { 0 }, leave: { _, _ in })
}

extension APIClient {
    /// How many times a batch's status is asked for before its undecided records are given
    /// back to be retried. With the back-off (200 ms doubling to 5 s) that is about 2 minutes.
    public static let maxBatchPolls = 30

    /// Polls a batch's status with back-off on `clock` (200 ms doubling to 5 s) until every
    /// record is decided, and at most `maxPolls` times, each through `gate` (paced with the
    /// token's other requests, and only while the token may still be used: held under its lease,
    /// not about to expire), and while no record's `ends_at` has passed.
    /// Returns one outcome per record of `records`, in order; undecided ones are transient
    /// ("undecided"), so they are retried, and the audit says so. Failed polls are logged.
    ///
    /// Records are matched to the status by position when the status lists them all, else by
    /// caller, receiver and `starts_at`.
    public func batchOutcomes(
        batchID: UUID, records: [CallRecord], token: BearerToken, clientAccountID: UUID, clock: any WallClock,
        maxPolls: Int = APIClient.maxBatchPolls, gate: RequestGate = .open,
        logger: Logger = Logger(label: "callwindow.api")
    ) async -> [PushOutcome] {
        var delay: Int64 = 0
        let deadline = records.map(\.endsAt).max() ?? clock.now()
        var outcomes = [PushOutcome?](repeating: nil, count: records.count)
        var polls = 0
        var failures = 0
        let batch = batchID.uuidString.lowercased()
        while clock.now() < deadline, polls < maxPolls {
            if delay > 0 {
                do { try await clock.sleep(until: clock.now() + delay) } catch { break }
            }
            delay = min(max(200, delay * 2), 5_000)
            guard let ticket = await gate.enter() else {
                logger.notice("batch status no longer polled: its token may not be used any more", metadata: ["batch": "\(batch)"])
                break
            }
            polls += 1
            let status: BatchStatusResponse
            do {
                status = try await batchStatus(batchID: batchID, token: token, clientAccountID: clientAccountID)
                gate.leave(ticket, true)
            } catch {
                gate.leave(ticket, (error as? APIError)?.httpStatus != nil)
                failures += 1
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("batch status poll failed", metadata: ["batch": "\(batch)", "failures": "\(failures)", "error": "\(error)"])
                }
                continue
            }
            if status.data.count == records.count {
                for (index, entry) in status.data.enumerated() where outcomes[index] == nil {
                    outcomes[index] = entry.outcome
                }
            } else {
                for entry in status.data {
                    guard let record = entry.record, let outcome = entry.outcome,
                          let index = records.indices.first(where: {
                              outcomes[$0] == nil && records[$0].caller == record.caller
                                  && records[$0].receiver == record.receiver && records[$0].startsAt == record.startsAt
                          }) else { continue }
                    outcomes[index] = outcome
                }
            }
            if outcomes.allSatisfy({ $0 != nil }) { break }
        }
        let undecided = outcomes.filter { $0 == nil }.count
        if undecided > 0 {
            logger.warning("batch left undecided; its records are retried", metadata: ["batch": "\(batch)", "undecided": "\(undecided)", "polls": "\(polls)"])
        }
        return outcomes.map { $0 ?? .transient(reason: "batch \(batch) undecided after \(polls) status polls") }
    }
}
