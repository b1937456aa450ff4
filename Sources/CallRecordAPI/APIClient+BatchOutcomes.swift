public import Foundation
public import Planning

extension APIClient {
    /// Polls a batch's status with back-off on `clock` (200 ms doubling to 5 s) until every
    /// record is decided or the latest `ends_at` of the batch passed; returns one outcome per
    /// record of `records`, in order, undecided ones as transient.
    ///
    /// Records are matched to the status by position when the status lists them all, else by
    /// caller, receiver and `starts_at`.
    public func batchOutcomes(
        batchID: UUID, records: [CallRecord], token: BearerToken, clientAccountID: UUID, clock: any WallClock
    ) async -> [PushOutcome] {
        var delay: Int64 = 0
        let deadline = records.map(\.endsAt).max() ?? clock.now()
        var outcomes = [PushOutcome?](repeating: nil, count: records.count)
        while clock.now() < deadline {
            if delay > 0 {
                do { try await clock.sleep(until: clock.now() + delay) } catch { break }
            }
            delay = min(max(200, delay * 2), 5_000)
            guard let status = try? await batchStatus(batchID: batchID, token: token, clientAccountID: clientAccountID) else {
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
        return outcomes.map { $0 ?? .transient(reason: "batch \(batchID.uuidString.lowercased()) undecided") }
    }
}
