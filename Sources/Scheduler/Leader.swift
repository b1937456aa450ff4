public import Foundation
public import Logging
public import Planning
public import Postgres
public import ServiceLifecycle
import Store
import Metrics
import Synchronization

/// Leads the configured client accounts: runs the planner for each at start, whenever a
/// campaign, set or label changes (LISTEN `callwindow_changes`, one NOTIFY per statement), and
/// every poll interval as a fallback; and runs the queue's upkeep (`QueueMaintainer`) for each
/// as its tasks come due.
///
/// Only one instance leads an account at a time: the leader holds a session advisory lock on
/// its listening connection, so a crash or a lost connection hands leadership to the next
/// instance that asks. A database outage is logged once, retried with back-off, and leading
/// resumes where it stopped (every cycle and every task is idempotent).
public final class Leader: Service, Sendable {
    private let configuration: PostgresConfiguration
    private let clients: [UUID]
    private let planner: Planner
    private let maintainer: QueueMaintainer
    private let intervals: MaintenanceIntervals
    private let clock: any WallClock
    private let pollIntervalMs: Int64
    private let logger: Logger
    private let lastCycle = Atomic<Int64>(0)

    /// The NOTIFY channel the campaign tables' triggers use.
    public static let channel = "callwindow_changes"

    /// A service leading `clients` on its own connection from `configuration`: planning with
    /// `planner` (`pollInterval`, default 5 s and at least 1 ms, is the fallback cycle) and upkeep
    /// with `maintainer` (default: through the planner's store) on `intervals`, timed on `clock`.
    public init(configuration: PostgresConfiguration, clients: [UUID], planner: Planner, maintainer: QueueMaintainer? = nil,
                intervals: MaintenanceIntervals = MaintenanceIntervals(), clock: any WallClock,
                pollInterval: Duration = .seconds(5), logger: Logger) {
        self.configuration = configuration
        self.clients = clients
        self.planner = planner
        self.maintainer = maintainer ?? QueueMaintainer(deliveries: planner.deliveries)
        self.intervals = intervals
        self.clock = clock
        let (seconds, attoseconds) = pollInterval.components
        pollIntervalMs = max(1, seconds * 1_000 + attoseconds / 1_000_000_000_000_000)
        self.logger = logger
    }

    /// Epoch ms (on the injected clock) when the last planning cycle finished; 0 before the first.
    public var lastCycleAt: Int64 { lastCycle.load(ordering: .relaxed) }

    /// Advisory lock key of an account's planner leadership.
    static func leadershipKey(_ client: UUID) -> Int64 {
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

    /// One connected session: listen, lead what it can, plan until the connection breaks.
    private func session(connected: () -> Void) async throws {
        let connection = try await PostgresConnection.connect(configuration)
        connected()
        do {
            try await plan(on: connection)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// Listens, takes leadership where it can, and plans and maintains until cancelled or the
    /// connection breaks.
    private func plan(on connection: PostgresConnection) async throws {
        try await connection.listen(Self.channel)
        logger.info("planner connected", metadata: ["endpoint": "\(connection.endpoint)"])
        var leading = Set<UUID>()
        var schedules: [UUID: MaintenanceSchedule] = [:]
        var setsChanged = true
        var planDue = true
        var nextPoll = clock.now()
        while !Task.isCancelled {
            for client in clients where !leading.contains(client) {
                if try await LeadershipStore.tryLead(key: Self.leadershipKey(client), on: connection) {
                    leading.insert(client)
                    schedules[client] = MaintenanceSchedule(intervals: intervals)
                    planDue = true
                    logger.info("planning client account", metadata: ["client": "\(client.uuidString.lowercased())"])
                }
            }
            let led = leading.sorted { $0.uuidString < $1.uuidString }
            if planDue || clock.now() >= nextPoll {
                for client in led {
                    try await planCycle(client, setsChanged: setsChanged, on: connection)
                }
                lastCycle.store(clock.now(), ordering: .relaxed)
                nextPoll = clock.now() + pollIntervalMs
                planDue = false
                setsChanged = false
            }
            for client in led {
                let tasks = schedules[client, default: MaintenanceSchedule(intervals: intervals)].takeDue(now: clock.now())
                if !tasks.isEmpty { try await maintain(client, tasks, on: connection) }
            }
            // Wait for a change, the poll or the next upkeep task (on the injected clock); take
            // every notification already received with it (one transaction's arrive together).
            let wake = min(nextPoll, schedules.values.map(\.nextDue).min() ?? nextPoll)
            if let first = try await nextChange(on: connection, until: wake) {
                var tables: Set<String> = [first.payload]
                while let more = try await connection.nextNotification(timeout: .zero) { tables.insert(more.payload) }
                setsChanged = !tables.isDisjoint(with: ["campaign_callers", "campaign_receivers", "campaign_pairs", "do_not_contact"])
                planDue = true
            }
        }
    }

    /// One planning cycle for `client`, with its metrics and a log line when it changed deliveries.
    private func planCycle(_ client: UUID, setsChanged: Bool, on connection: PostgresConnection) async throws {
        let report = try await planner.cycle(clientAccountID: client, now: clock.now(), setsChanged: setsChanged, on: connection)
        let account = client.uuidString.lowercased()
        Gauge(label: "callwindow_late_windows", dimensions: [("client", account)]).record(report.lateWindows)
        let depth = try await planner.deliveries.queueDepth(clientAccountID: client, on: connection)
        Gauge(label: "callwindow_queue_depth", dimensions: [("client", account)]).record(depth)
        if report.recordsCreated > 0 || report.recordsCancelled > 0 || report.recordsSuppressed > 0 {
            logger.info("planned", metadata: [
                "client": "\(account)", "created": "\(report.recordsCreated)", "cancelled": "\(report.recordsCancelled)",
                "suppressed": "\(report.recordsSuppressed)",
                "late_windows": "\(report.lateWindows)",
            ])
        }
    }

    /// The upkeep `tasks` due for `client`, with their metrics and a log line when they changed deliveries.
    private func maintain(_ client: UUID, _ tasks: [MaintenanceTask], on connection: PostgresConnection) async throws {
        let report = try await maintainer.perform(tasks, clientAccountID: client, now: clock.now(), on: connection)
        let account = client.uuidString.lowercased()
        Counter(label: "callwindow_expired_records_total", dimensions: [("client", account)]).increment(by: report.recordsExpired)
        if report.recordsExpired > 0 || report.leasesRescued > 0 {
            logger.info("maintained", metadata: [
                "client": "\(account)", "expired": "\(report.recordsExpired)", "rescued": "\(report.leasesRescued)",
            ])
        }
    }

    /// The next notification, or `nil` once the injected clock reaches `deadline`, whichever
    /// comes first. The socket wait has no deadline of its own: time is the clock's alone.
    private func nextChange(on connection: PostgresConnection, until deadline: Int64) async throws -> PostgresNotification? {
        try await withThrowingTaskGroup(of: PostgresNotification?.self) { group in
            group.addTask { try await connection.nextNotification(timeout: .seconds(86_400)) }
            group.addTask {
                try await self.clock.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }
}
