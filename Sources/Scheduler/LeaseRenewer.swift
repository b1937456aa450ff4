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

    /// Renews the leases of `ids` every `leaseMs / 3` until cancelled; failures are logged and
    /// retried at the next turn, never thrown.
    public func renew(_ ids: [Int64]) async {
        while !Task.isCancelled {
            do {
                try await clock.sleep(milliseconds: leaseMs / 3)
            } catch {
                return
            }
            do {
                let held = try await database.withConnection { connection in
                    try await store.renewLeases(ids: ids, owner: owner, now: clock.now(), leaseMs: leaseMs, on: connection)
                }
                if held < ids.count {
                    // Another instance rescued and claimed them (this process stalled past its lease): the
                    // admission check lets them go before their next attempt.
                    logger.warning("claim leases lost", metadata: ["lost": "\(ids.count - held)", "held": "\(held)"])
                }
            } catch {
                // Cancelled mid-query because the batch finished: nothing failed.
                if Task.isCancelled { return }
                logger.warning("could not renew delivery leases", metadata: ["error": "\(error)"])
            }
        }
    }
}
