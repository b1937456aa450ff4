// The dispatcher's side of the token pool's admission seam: before each round of attempts the
// pool asks which of a batch's records may still be sent, and this answers from the database in
// one set query (`DeliveryStore.withdrawals`). The pool only learns a reason to report; the typed
// decision (hold, cancel, suppress) stays here, and the dispatcher reads it back by position to
// write each withdrawn record's final state or return it to the queue.

import Logging
import Planning
import Postgres
import Store
import Synchronization
import TokenPool

/// Answers the pool's admission checks for one claimed batch.
final class DeliveryAdmission: SendAdmission {
    /// Delivery ids and the lease tokens of their claim, by position in the records handed to `send`.
    private let claimed: [(id: Int64, leaseToken: Int64)]
    private let owner: String
    private let database: PostgresPool
    private let store: DeliveryStore
    private let clock: any WallClock
    private let logger: Logger
    private let decided = Mutex<[Int: Withdrawal]>([:])

    init(claimed: [(id: Int64, leaseToken: Int64)], owner: String, database: PostgresPool, store: DeliveryStore, clock: any WallClock,
         logger: Logger) {
        self.claimed = claimed
        self.owner = owner
        self.database = database
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    /// The records of `indices` that may not be attempted now, with the reason to report, stamped
    /// with the instant the query got its connection (its snapshot is of that moment or later).
    /// When the database cannot be asked, every one of them is held: no record is attempted
    /// unchecked.
    func check(_ indices: [Int]) async -> AdmissionCheck {
        let asked = indices.map { claimed[$0] }
        let byID: [Int64: Withdrawal]
        var checkedAt: Int64?
        do {
            (byID, checkedAt) = try await database.withConnection { connection in
                let at = self.clock.now()
                return (try await self.store.withdrawals(claimed: asked, owner: self.owner, on: connection), at)
            }
        } catch {
            logger.warning("admission check failed; the records wait for the next check", metadata: ["records": "\(asked.count)", "error": "\(error)"])
            byID = Dictionary(asked.map { ($0.id, Withdrawal.hold(reason: "the admission check could not reach the database")) }) { first, _ in first }
        }
        let withdrawn = decided.withLock { decided in
            var withdrawn: [Int: String] = [:]
            for index in indices {
                guard let withdrawal = byID[claimed[index].id] else { continue }
                decided[index] = withdrawal
                withdrawn[index] = withdrawal.reason
            }
            return withdrawn
        }
        return AdmissionCheck(withdrawn: withdrawn, checkedAt: checkedAt)
    }

    /// What the check decided for the record at `index`, if it withdrew it.
    func withdrawal(at index: Int) -> Withdrawal? {
        decided.withLock { $0[index] }
    }
}
