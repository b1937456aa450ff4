// The lease renewer keeps a batch's claim leases alive while the batch is out, so another
// instance's rescuer never takes over work that is still being sent. It runs as a child task of
// the batch and ends with it; if the process dies, the leases run out and the work is rescued.

public import Logging
public import Planning
public import Postgres
public import Store

/// Renews the claim leases of a batch out, every third of the lease.
public struct LeaseRenewer: Sendable {
    let database: PostgresPool
    let store: DeliveryStore
    let owner: String
    let leaseMs: Int64
    let clock: any WallClock
    let logger: Logger

    /// A renewer extending `owner`'s leases by `leaseMs` through `store` on `database`, timed on `clock`.
    public init(database: PostgresPool, store: DeliveryStore, owner: String, leaseMs: Int64, clock: any WallClock, logger: Logger) {
        self.database = database
        self.store = store
        self.owner = owner
        self.leaseMs = leaseMs
        self.clock = clock
        self.logger = logger
    }

    /// How many of the `asked` leases were lost, given that the renewal found `held` of them still
    /// this owner's and that `stillOut` are the records not settled once it returned. A record
    /// settled while the renewal ran may have been written (no longer in flight, so not renewed)
    /// before the renewal's statement read it: that is not a lost lease, so those are excused.
    static func lost(asked: [Int64], held: Int, stillOut: [Int64]) -> Int {
        let out = Set(stillOut)
        let settledMeanwhile = asked.count { !out.contains($0) }
        return max(0, asked.count - held - settledMeanwhile)
    }

    /// Renews the leases of the records `ids` returns (those of the batch not yet settled) every
    /// `leaseMs / 3` until cancelled; failures are logged and retried at the next turn, never
    /// thrown. `renewed(asked, lost)` is told the outcome of each renewal.
    ///
    /// A record the API settled goes to the result writer at once and is written within
    /// `DispatcherOptions.resultGroupMs`; asking to renew it once written would count it as a
    /// lease lost.
    public func renew(_ ids: @escaping @Sendable () -> [Int64], renewed: @escaping @Sendable (_ asked: Int, _ lost: Int) -> Void = { _, _ in }) async {
        while !Task.isCancelled {
            do {
                try await clock.sleep(milliseconds: leaseMs / 3)
            } catch {
                return
            }
            let asked = ids()
            guard !asked.isEmpty else { continue }
            do {
                let held = try await database.withConnection { connection in
                    try await store.renewLeases(ids: asked, owner: owner, now: clock.now(), leaseMs: leaseMs, on: connection)
                }
                let lost = Self.lost(asked: asked, held: held, stillOut: ids())
                renewed(asked.count, lost)
                if lost > 0 {
                    // Another instance rescued and claimed them (this process stalled past its lease): the
                    // admission check lets them go before their next attempt.
                    logger.warning("claim leases lost", metadata: ["lost": "\(lost)", "held": "\(held)"])
                }
            } catch {
                // Cancelled mid-query because the batch finished: nothing failed.
                if Task.isCancelled { return }
                logger.warning("could not renew delivery leases", metadata: ["error": "\(error)"])
            }
        }
    }
}
