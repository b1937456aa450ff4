// The queue's upkeep, apart from planning: expiring what ended unpushed, rescuing lapsed leases,
// deleting finished deliveries of ended windows, and creating audit partitions ahead. Each task
// has its own interval (`MaintenanceSchedule`, pure), and the leader runs them for the accounts
// it leads. Every task is one idempotent statement, so a run cut short is simply run again.

public import Foundation
public import Postgres
public import Store

/// One upkeep task of the queue.
public enum MaintenanceTask: String, CaseIterable, Sendable, Hashable {
    /// Create the audit table's monthly partitions ahead of time.
    case auditPartitions
    /// Mark planned windows that ended unpushed `expired`.
    case expireWindows
    /// Finish pending deliveries whose `ends_at` passed as `expired`, with an audit row.
    case expireRecords
    /// Return in-flight deliveries whose claim lease ran out (a dead instance) to the queue.
    case rescueLeases
    /// Delete finished deliveries of ended windows (the audit trail keeps every attempt).
    case cleanUp
}

/// How often each task runs, in ms (defaults: partitions hourly, expiry and rescue every 5 s,
/// clean-up every minute).
public struct MaintenanceIntervals: Sendable, Equatable {
    /// `auditPartitions`. Default 1 h.
    public var auditPartitionsMs: Int64 = 3_600_000
    /// `expireWindows` and `expireRecords`. Default 5 s.
    public var expiryMs: Int64 = 5_000
    /// `rescueLeases`. Default 5 s.
    public var rescueMs: Int64 = 5_000
    /// `cleanUp`. Default 60 s.
    public var cleanUpMs: Int64 = 60_000

    /// The default intervals.
    public init() {}

    /// The interval of `task`, at least 1 ms.
    public func interval(of task: MaintenanceTask) -> Int64 {
        let ms: Int64 = switch task {
        case .auditPartitions: auditPartitionsMs
        case .expireWindows, .expireRecords: expiryMs
        case .rescueLeases: rescueMs
        case .cleanUp: cleanUpMs
        }
        return max(1, ms)
    }
}

/// When each task of one account runs next. Pure: time is passed in. A task never run is due at
/// once; a task taken at `now` is next due at `now + interval`.
public struct MaintenanceSchedule: Sendable, Equatable {
    /// The intervals the schedule keeps.
    public let intervals: MaintenanceIntervals
    private var nextAt: [MaintenanceTask: Int64] = [:]

    /// A schedule on which every task is due at once.
    public init(intervals: MaintenanceIntervals = MaintenanceIntervals()) {
        self.intervals = intervals
    }

    /// The tasks due at `now`, in `MaintenanceTask.allCases` order, each then scheduled again.
    public mutating func takeDue(now: Int64) -> [MaintenanceTask] {
        let due = MaintenanceTask.allCases.filter { (nextAt[$0] ?? .min) <= now }
        for task in due { nextAt[task] = now + intervals.interval(of: task) }
        return due
    }

    /// The earliest instant a task is due (`Int64.min` while one has never run).
    public var nextDue: Int64 {
        MaintenanceTask.allCases.map { nextAt[$0] ?? .min }.min() ?? .min
    }
}

/// What one maintenance run did for one client account.
public struct MaintenanceReport: Sendable, Equatable {
    /// Planned windows that ended unpushed and were marked `expired`.
    public var windowsExpired = 0
    /// Pending deliveries that expired because their window ended.
    public var recordsExpired = 0
    /// `recordsExpired` per client account (accounts with none are absent).
    public var recordsExpiredByAccount: [UUID: Int] = [:]
    /// In-flight deliveries whose lease had run out, returned to the queue.
    public var leasesRescued = 0
    /// Finished deliveries of ended windows deleted.
    public var deliveriesCleaned = 0
    /// Audit partitions created.
    public var partitionsCreated = 0
    /// An empty report: every count zero.
    public init() {}
}

/// Runs upkeep tasks for client accounts through `DeliveryStore`.
public struct QueueMaintainer: Sendable {
    /// Where deliveries, windows and audit partitions live.
    public var deliveries: DeliveryStore
    /// Months of audit partitions created ahead. Default 2.
    public var auditMonthsAhead: Int

    /// A maintainer writing through `deliveries`, creating audit partitions `auditMonthsAhead` months ahead.
    public init(deliveries: DeliveryStore, auditMonthsAhead: Int = 2) {
        self.deliveries = deliveries
        self.auditMonthsAhead = auditMonthsAhead
    }

    /// Runs `tasks` (in the order given) for `clientAccountID` at `now`.
    public func perform(
        _ tasks: [MaintenanceTask], clientAccountID: UUID, now: Int64, on connection: PostgresConnection
    ) async throws -> MaintenanceReport {
        try await perform(tasks, clientAccountIDs: [clientAccountID], now: now, on: connection)
    }

    /// Runs `tasks` (in the order given) for every account of `clientAccountIDs` at `now`: one
    /// statement per task whatever the number of accounts, so idle upkeep costs the same for
    /// one account as for a thousand.
    public func perform(
        _ tasks: [MaintenanceTask], clientAccountIDs: [UUID], now: Int64, on connection: PostgresConnection
    ) async throws -> MaintenanceReport {
        var report = MaintenanceReport()
        guard !clientAccountIDs.isEmpty else { return report }
        for task in tasks {
            switch task {
            case .auditPartitions:
                report.partitionsCreated += try await deliveries.ensureAuditPartitions(now: now, monthsAhead: auditMonthsAhead, on: connection)
            case .expireWindows:
                report.windowsExpired += try await deliveries.expireWindows(clientAccountIDs: clientAccountIDs, now: now, on: connection)
            case .expireRecords:
                let expired = try await deliveries.expire(clientAccountIDs: clientAccountIDs, now: now, on: connection)
                report.recordsExpiredByAccount.merge(expired, uniquingKeysWith: +)
                report.recordsExpired += expired.values.reduce(0, +)
            case .rescueLeases:
                report.leasesRescued += try await deliveries.rescue(clientAccountIDs: clientAccountIDs, now: now, on: connection)
            case .cleanUp:
                report.deliveriesCleaned += try await deliveries.cleanUp(clientAccountIDs: clientAccountIDs, now: now, on: connection)
            }
        }
        return report
    }

    /// Every task at once, for `clientAccountID` at `now` (tests, and a one-shot catch-up).
    public func performAll(clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> MaintenanceReport {
        try await perform(MaintenanceTask.allCases, clientAccountID: clientAccountID, now: now, on: connection)
    }
}
