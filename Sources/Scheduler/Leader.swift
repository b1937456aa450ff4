public import Foundation
public import Logging
public import Planning
public import Postgres
public import ServiceLifecycle
import Store
import Metrics
import Synchronization

/// Leads the configured client accounts: plans each at start and then only when that is worth
/// doing — a campaign, set or label of the account changed (LISTEN `callwindow_changes`, one
/// NOTIFY per statement and account), time reached the plan's next change (a window's push
/// entering the horizon, a window ending), or, as a fallback, `pollInterval` passed — and runs
/// the queue's upkeep (`QueueMaintainer`) for all of them together, one statement per task, as
/// its tasks come due. It also listens on `DeliveryStore.dueChannel` and wakes the dispatcher of
/// an account that has deliveries to claim (`DueWakes`). So an idle daemon's database cost does
/// not grow with the number of accounts.
///
/// Only one instance leads an account at a time: the leader holds a session advisory lock on
/// its listening connection, so a crash or a lost connection hands leadership to the next
/// instance that asks. A database outage is logged once, retried with back-off, and leading
/// resumes where it stopped (every cycle and every task is idempotent).
public final class Leader: Service, Sendable {
    private let configuration: PostgresConfiguration
    private let accounts: Mutex<[UUID]>
    /// Fired by `setClients`: the loop looks at the accounts again.
    private let accountsChanged = WakeSignal()
    private let planner: Planner
    private let maintainer: QueueMaintainer
    private let intervals: MaintenanceIntervals
    private let clock: any WallClock
    private let pollIntervalMs: Int64
    private let wakes: DueWakes?
    private let logger: Logger
    private let liveness: LeaderLiveness?
    private let lastCycle = Atomic<Int64>(0)
    private let currentLeads = Mutex<Set<UUID>>([])

    /// The NOTIFY channel the campaign tables' triggers use.
    public static let channel = "callwindow_changes"

    /// How often a leader that has nothing else to do still reaches the database (taking the
    /// lead of accounts no one leads, and proving it is alive for `/readyz`), in ms.
    public static let heartbeatMs: Int64 = 10_000

    /// A service leading `clients` on its own connection from `configuration`: planning with
    /// `planner` (`pollInterval`, default 10 min and at least 1 ms, is the longest an account
    /// goes without a cycle) and upkeep with `maintainer` (default: through the planner's store)
    /// on `intervals`, timed on `clock`; waking the dispatchers of `wakes` when work is due.
    /// With `liveness`, every round on the database is watched (`SessionWatchdog`) and the
    /// leader reaches the database at least every heartbeat, so that a database gone quiet
    /// costs the lead within `liveness.giveUpWithinMs` (the daemon always sets it).
    public init(configuration: PostgresConfiguration, clients: [UUID], planner: Planner, maintainer: QueueMaintainer? = nil,
                intervals: MaintenanceIntervals = MaintenanceIntervals(), clock: any WallClock,
                pollInterval: Duration = .seconds(600), wakes: DueWakes? = nil, liveness: LeaderLiveness? = nil, logger: Logger) {
        self.configuration = configuration
        accounts = Mutex(clients)
        self.planner = planner
        self.maintainer = maintainer ?? QueueMaintainer(deliveries: planner.deliveries)
        self.intervals = intervals
        self.clock = clock
        let (seconds, attoseconds) = pollInterval.components
        pollIntervalMs = max(1, seconds * 1_000 + attoseconds / 1_000_000_000_000_000)
        self.wakes = wakes
        self.liveness = liveness
        self.logger = logger
    }

    /// The client accounts it leads where it can.
    public var clients: [UUID] { accounts.withLock { $0 } }

    /// Changes the accounts to lead (a reload): an account added is asked for at once, like
    /// those no one leads; one removed is planned no more, and its advisory lock is released, so
    /// another instance that serves it takes the lead without waiting for this one to stop.
    public func setClients(_ clients: [UUID]) {
        accounts.withLock { $0 = clients }
        accountsChanged.fire()
    }

    /// The accounts this instance leads now: none while it cannot reach the database.
    public var leads: Set<UUID> { currentLeads.withLock { $0 } }

    /// Epoch ms (on the injected clock) when the leader's last round (planning, upkeep or its
    /// heartbeat) finished on the database; 0 before the first.
    public var lastCycleAt: Int64 { lastCycle.load(ordering: .relaxed) }

    /// Advisory lock key of an account's planner leadership.
    public static func leadershipKey(_ client: UUID) -> Int64 {
        // FNV-1a over the uuid's bytes: stable across processes and builds.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        withUnsafeBytes(of: client.uuid) { bytes in
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        return Int64(bitPattern: hash)
    }

    /// Plans until graceful shutdown or cancellation; a database failure is logged once per outage and the
    /// session retried with back-off (0.2 s doubling to 3.2 s).
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                var connected = false
                do {
                    try await self.session { connected = true }
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    // A session that got connected ends an outage: the next one is logged again
                    // and starts its back-off from the beginning.
                    if connected { failures = 0 }
                    if failures == 0 {
                        self.logger.error("planner lost the database; retrying with back-off", metadata: ["error": "\(error)"])
                    }
                    failures += 1
                    let backoffMs = min(Int64(1 << min(failures, 5)) * 100, 5_000)
                    try? await self.clock.sleep(milliseconds: backoffMs)
                    continue
                }
            }
        }
    }

    /// One connected session: listen, lead what it can, plan until the connection breaks (or,
    /// with `liveness`, until its watchdog severs a connection that went quiet). Every lead
    /// ends with it.
    private func session(connected: () -> Void) async throws {
        let connection = try await PostgresConnection.connect(configuration)
        connected()
        defer { currentLeads.withLock { $0 = [] } }
        guard let liveness else {
            do {
                try await plan(on: connection, watchdog: nil)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            return
        }
        let watchdog = SessionWatchdog(connection: connection, configuration: configuration, clock: clock, liveness: liveness)
        let failure: (any Error)? = await withTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                do { try await self.plan(on: connection, watchdog: watchdog) } catch { return error }
                return nil
            }
            group.addTask {
                do { try await watchdog.watch() } catch { return error }
                return nil
            }
            var errors: [any Error] = []
            if let first = await group.next(), let first { errors.append(first) }
            group.cancelAll()
            for await error in group { if let error { errors.append(error) } }
            // A round that failed because the watchdog severed its connection says why.
            return errors.first { $0 is SessionSevered } ?? errors.first
        }
        await connection.close()
        if let failure { throw failure }
    }

    /// Listens, takes leadership where it can, and plans and maintains until cancelled or the
    /// connection breaks.
    private func plan(on connection: PostgresConnection, watchdog: SessionWatchdog?) async throws {
        watchdog?.begin()
        try await connection.listen(Self.channel)
        if wakes != nil { try await connection.listen(DeliveryStore.dueChannel) }
        logger.info("planner connected", metadata: ["endpoint": "\(connection.endpoint)"])
        // Notifications sent while this session was away are lost: every dispatcher looks again.
        wakes?.fireAll()
        var leading = Set<UUID>()
        var schedule = MaintenanceSchedule(intervals: intervals)
        var nextPlan: [UUID: Int64] = [:]     // led account → its next cycle
        var changed: [UUID: Bool] = [:]       // led account → notified since its last cycle (sets changed?)
        var nextLeadAttempt = Int64.min
        var clients = self.clients
        var keys = Self.keys(of: clients)
        var lastAnswerAt = clock.now()
        var answers = connection.answers
        while !Task.isCancelled {
            watchdog?.begin()
            let current = self.clients
            if current != clients {
                clients = current
                keys = Self.keys(of: clients)
                let gone = leading.subtracting(clients).sorted { $0.uuidString < $1.uuidString }
                if !gone.isEmpty {
                    try await LeadershipStore.release(keys: gone.map(Self.leadershipKey), on: connection)
                    for client in gone {
                        leading.remove(client)
                        currentLeads.withLock { _ = $0.remove(client) }
                        nextPlan[client] = nil
                        changed[client] = nil
                        logger.info("stopped planning client account", metadata: ["client": "\(client.uuidString.lowercased())"])
                    }
                }
                nextLeadAttempt = .min
            }
            var now = clock.now()
            if now >= nextLeadAttempt, leading.count < clients.count {
                let asked = clients.filter { !leading.contains($0) }.map(Self.leadershipKey)
                for key in try await LeadershipStore.tryLead(keys: asked, on: connection) {
                    guard let client = keys[key] else { continue }
                    leading.insert(client)
                    currentLeads.withLock { _ = $0.insert(client) }
                    nextPlan[client] = now
                    changed[client] = true
                    logger.info("planning client account", metadata: ["client": "\(client.uuidString.lowercased())"])
                }
                nextLeadAttempt = now + Self.heartbeatMs
            }
            let led = leading.sorted { $0.uuidString < $1.uuidString }
            for client in led where (nextPlan[client] ?? .min) <= now || changed[client] != nil {
                let notified = changed.removeValue(forKey: client)
                let next = try await planCycle(client, notified: notified, on: connection)
                now = clock.now()
                nextPlan[client] = min(next ?? .max, now + fallback(for: client))
            }
            let tasks = schedule.takeDue(now: clock.now())
            if !tasks.isEmpty, !led.isEmpty { try await maintain(led, tasks, on: connection) }
            // Watched, the session reaches the database at least every heartbeat, whatever
            // else is due: a quiet database is then noticed, and the server's
            // `idle_session_timeout` never ends a live leader's session.
            if watchdog != nil {
                if connection.answers != answers {
                    (answers, lastAnswerAt) = (connection.answers, clock.now())
                } else if clock.now() - lastAnswerAt >= Self.heartbeatMs {
                    try await LeadershipStore.heartbeat(on: connection)
                    (answers, lastAnswerAt) = (connection.answers, clock.now())
                }
            }
            watchdog?.end()
            lastCycle.store(clock.now(), ordering: .relaxed)
            // Wait for a notification, the next cycle, upkeep task or heartbeat (on the injected
            // clock); take every notification already received with it.
            var wake = clock.now() + Self.heartbeatMs
            if leading.count < clients.count { wake = min(wake, nextLeadAttempt) }
            if !led.isEmpty { wake = min(wake, schedule.nextDue) }
            for client in led { wake = min(wake, nextPlan[client] ?? wake) }
            var notification = try await nextChange(on: connection, until: wake)
            while let received = notification {
                route(received, leading: leading, changed: &changed)
                notification = try await connection.nextNotification(timeout: .zero)
            }
        }
    }

    /// Each account by its leadership key.
    private static func keys(of clients: [UUID]) -> [Int64: UUID] {
        Dictionary(clients.map { (leadershipKey($0), $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// What a notification asks for: a due account's dispatcher is woken; a changed account is
    /// planned (with its sets, when one of them changed). A change without an account (a schema
    /// older than 008) plans every led account.
    private func route(_ notification: PostgresNotification, leading: Set<UUID>, changed: inout [UUID: Bool]) {
        if notification.channel == DeliveryStore.dueChannel {
            if let account = UUID(uuidString: notification.payload) { wakes?.fire(account) }
            return
        }
        let parts = notification.payload.split(separator: ":", maxSplits: 1).map(String.init)
        let table = parts.first ?? ""
        let sets = ["campaign_callers", "campaign_receivers", "campaign_pairs", "do_not_contact"].contains(table)
        let accounts = parts.count == 2 ? UUID(uuidString: parts[1]).map { [$0] } ?? [] : Array(leading)
        for account in accounts where leading.contains(account) {
            changed[account] = (changed[account] ?? false) || sets
        }
    }

    /// The fallback interval of `account`: `pollInterval`, less up to a tenth of it that is fixed
    /// per account, so that a thousand accounts planned together at start do not stay in step.
    private func fallback(for account: UUID) -> Int64 {
        let spread = max(1, pollIntervalMs / 10)
        return pollIntervalMs - Int64(UInt64(bitPattern: Self.leadershipKey(account)) % UInt64(spread))
    }

    /// One planning cycle for `client`, with its metrics and a log line when it changed
    /// deliveries; `notified` when a change notification asked for it (`true`: a set changed).
    /// Wakes the account's dispatchers when it created deliveries or a change may have made some
    /// claimable (a campaign resumed). Returns the plan's next change by time alone.
    private func planCycle(_ client: UUID, notified: Bool?, on connection: PostgresConnection) async throws -> Int64? {
        let report = try await planner.cycle(clientAccountID: client, now: clock.now(), setsChanged: notified ?? false, on: connection)
        let account = client.uuidString.lowercased()
        Gauge(label: "callwindow_late_windows", dimensions: [("client", account)]).record(report.lateWindows)
        if report.recordsCreated > 0 || notified != nil {
            try await planner.deliveries.notifyDue(clientAccountIDs: [client], on: connection)
            // This process's dispatcher at once (the deliveries are committed): the NOTIFY, for
            // other processes, reaches this one's only once the leader waits again, after every
            // account due for planning was planned (100 accounts inserted at once: 18 s).
            wakes?.fire(client)
        }
        if report.recordsCreated > 0 || report.recordsCancelled > 0 || report.recordsSuppressed > 0 {
            logger.info("planned", metadata: [
                "client": "\(account)", "created": "\(report.recordsCreated)", "cancelled": "\(report.recordsCancelled)",
                "suppressed": "\(report.recordsSuppressed)",
                "late_windows": "\(report.lateWindows)",
            ])
        }
        return report.nextChangeAt
    }

    /// The upkeep `tasks` due, for every led account at once, with their metrics (the queue
    /// depth with each expiry round) and a log line when they changed deliveries.
    private func maintain(_ clients: [UUID], _ tasks: [MaintenanceTask], on connection: PostgresConnection) async throws {
        let report = try await maintainer.perform(tasks, clientAccountIDs: clients, now: clock.now(), on: connection)
        for (client, expired) in report.recordsExpiredByAccount {
            Counter(label: "callwindow_expired_records_total", dimensions: [("client", client.uuidString.lowercased())]).increment(by: expired)
        }
        if tasks.contains(.expireRecords) {
            let depths = try await planner.deliveries.queueDepths(clientAccountIDs: clients, on: connection)
            for client in clients {
                Gauge(label: "callwindow_queue_depth", dimensions: [("client", client.uuidString.lowercased())]).record(depths[client] ?? 0)
            }
        }
        if report.recordsExpired > 0 || report.leasesRescued > 0 {
            logger.info("maintained", metadata: [
                "accounts": "\(clients.count)", "expired": "\(report.recordsExpired)", "rescued": "\(report.leasesRescued)",
            ])
        }
    }

    /// The next notification, or `nil` once the injected clock reaches `deadline` or the
    /// accounts changed, whichever comes first. The socket wait has no deadline of its own: time
    /// is the clock's alone.
    private func nextChange(on connection: PostgresConnection, until deadline: Int64) async throws -> PostgresNotification? {
        // A notification received meanwhile is never dropped (see `nextNotification(orWhen:)`):
        // a dropped "due" one left an account's dispatcher asleep for its whole idle fallback.
        let clock = self.clock
        let accountsChanged = self.accountsChanged
        return try await connection.nextNotification(orWhen: {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await clock.sleep(until: deadline) }
                group.addTask { await accountsChanged.wait() }
                await group.next()
                group.cancelAll()
            }
        })
    }
}
