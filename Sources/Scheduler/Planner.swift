// The planner keeps `callwindow.windows` in step with the campaigns and creates deliveries
// just in time.
//
// One cycle for one client account (only the instance holding the account's planner lock runs
// it; planning is idempotent, so a cycle cut short by a crash is simply run again):
//
//   campaigns ──► Planning (windows, record counts, problems)
//             ──► PushSchedule over every live window of the account (ALAP, EDF)
//             ──► windows table (planned push times; ended ones expired; vanished ones
//                 removed, or cancelled with their pending deliveries once materialised)
//             ──► deliveries for windows whose push starts within the horizon
//
// Expiry, rescue, clean-up and audit partitions are not planning: `QueueMaintainer` runs them on
// their own intervals, and the `Leader` runs both for the accounts it leads.
//
// Materialised windows keep the push time they were created with; their remaining records
// still occupy capacity in the schedule of the windows planned after them. A campaign whose
// label is unknown or static is planned (its problem is recorded) but not materialised, and
// the dispatcher does not claim its records, until the label is fixed.

public import Foundation
public import Logging
public import Planning
public import Postgres
public import Store

/// Tuning of the planner, with its defaults.
public struct PlannerOptions: Sendable {
    /// Deliveries are created for windows whose push starts within this horizon. Default 2 h.
    public var horizonMs: Int64 = 7_200_000
    /// The pool the plan assumes (tokens, transport, utilisation).
    public var capacity: Capacity

    /// Options for `capacity` with a horizon of `horizonMs` (default 2 h).
    public init(capacity: Capacity, horizonMs: Int64 = 7_200_000) {
        self.capacity = capacity
        self.horizonMs = horizonMs
    }
}

/// What one planning cycle did for one client account.
public struct PlanningCycle: Sendable, Equatable {
    /// Campaigns of the account read this cycle, in any status.
    public var campaigns = 0
    /// Windows inserted, or planned ones whose push time was rewritten (each upsert counts, changed or
    /// not).
    public var windowsPlanned = 0
    /// Planned windows within the horizon materialised this cycle.
    public var materialised = 0
    /// Deliveries created, including those added to windows already materialised.
    public var recordsCreated = 0
    /// Pending deliveries cancelled: by a cancelled campaign, a window planned away, or a record removed
    /// from its campaign.
    public var recordsCancelled = 0
    /// Pending deliveries suppressed because their receiver is on the do-not-contact list.
    public var recordsSuppressed = 0
    /// Windows still to push that cannot finish by their deadline (beyond the start-up margin for windows
    /// already being pushed).
    public var lateWindows = 0
    /// The next instant the plan changes by the passage of time alone (a planned window's push
    /// enters the horizon, or a live window ends); `nil` when none will. Until then, and unless a
    /// campaign, set or label changes, another cycle would do nothing.
    public var nextChangeAt: Int64?
    /// An empty report: every count zero.
    public init() {}
}

/// Plans the campaigns of client accounts into windows and deliveries.
public struct Planner: Sendable {
    /// Horizon, capacity and audit partition settings.
    public var options: PlannerOptions
    /// Where windows, deliveries and audit rows are written.
    public var deliveries: DeliveryStore
    /// Where campaigns and their record counts are read.
    public var campaigns = CampaignStore()
    /// Where a campaign that cannot be planned is reported.
    public var logger: Logger

    /// A planner writing through `deliveries` and reading campaigns with a default `CampaignStore`.
    public init(options: PlannerOptions, deliveries: DeliveryStore, logger: Logger) {
        self.options = options
        self.deliveries = deliveries
        self.logger = logger
    }

    /// One planning cycle for `clientAccountID` at `now`: plan, sync the windows, materialise.
    /// Bad campaign data never throws here:
    /// it becomes a problem recorded for that campaign.
    ///
    /// `setsChanged` (callers, receivers, pairs or the do-not-contact list may have changed since
    /// the last cycle) also adds new records to windows already materialised, cancels removed ones
    /// and suppresses listed ones; it costs one pass over each such window's records, so the
    /// daemon sets it only when notified.
    public func cycle(clientAccountID: UUID, now: Int64, setsChanged: Bool = true, on connection: PostgresConnection) async throws -> PlanningCycle {
        var report = PlanningCycle()
        let stored = try await campaigns.campaigns(.clients([clientAccountID]), on: connection)
        report.campaigns = stored.count
        let live = try await deliveries.liveWindows(clientAccountID: clientAccountID, now: now, on: connection)
        var materialised: [Int64: [ClosedRange<Int64>: Int]] = [:]  // campaign → span → remaining
        for window in live where window.state == .materialized {
            materialised[window.campaignID, default: [:]][window.startsAt...window.endsAt] = window.remaining
        }
        let naming: FieldNaming = options.capacity.transport == .v1 ? .v1 : .v2

        struct Entry {
            var campaign: Campaign; var windows: [Window]; var demandIndex: [Int]; var held: Bool
            var problems: [String]; var invalidRecords: Int; var pushing: [Bool]; var validRecords: Int
        }
        var entries: [Entry] = []
        var demands: [PushDemand] = []
        for item in stored {
            let campaign = item.campaign
            switch campaign.status {
            case .cancelled:
                report.recordsCancelled += try await deliveries.cancelCampaign(campaignID: campaign.id, now: now, on: connection)
                try await deliveries.saveCampaignState(campaignID: campaign.id, clientAccountID: clientAccountID, problems: [],
                                                       invalidRecords: 0, now: now, on: connection)
                continue
            case .paused:
                continue
            case .active:
                break
            }
            let counts = try await campaigns.recordCounts(of: item, naming: naming, on: connection)
            let sketch = PlanReport.build(campaigns: [(campaign, counts)], capacity: options.capacity, now: now)
            // Lateness is judged below on the real schedule (records already sent are not
            // pushed again); the sketch, which plans every window whole, gives the rest.
            let problems = (sketch.campaigns.first?.problems ?? []).filter { $0.kind != .lateWindows }.map(\.message)
            let windows: [Window]
            do {
                windows = try campaign.windows().filter { $0.endsAt > now }
            } catch {
                try await deliveries.saveCampaignState(campaignID: campaign.id, clientAccountID: clientAccountID, problems: problems,
                                                       invalidRecords: counts.invalidRecords, now: now, on: connection)
                logger.warning("campaign cannot be planned", metadata: ["campaign": "\(campaign.id)", "problem": "\(error)"])
                continue
            }
            var indexes: [Int] = []
            var pushing: [Bool] = []
            for window in windows {
                let remaining = materialised[campaign.id]?[window.startsAt...window.endsAt]
                pushing.append(remaining != nil)
                let records = remaining ?? counts.validRecords
                indexes.append(demands.count)
                demands.append(PushDemand(campaign: campaign, window: window, records: records))
            }
            entries.append(Entry(campaign: campaign, windows: windows, demandIndex: indexes, held: item.label?.isDynamic != true,
                                 problems: problems, invalidRecords: counts.invalidRecords, pushing: pushing, validRecords: counts.validRecords))
        }

        let slots = PushSchedule.plan(demands, capacity: options.capacity, now: now)
        for entry in entries {
            let planned = zip(entry.windows, entry.demandIndex).map { window, index in
                let slot = slots[index]
                return PlannedWindow(startsAt: window.startsAt, endsAt: window.endsAt, deadline: slot.deadline,
                                     pushAt: slot.pushAt, lateByMs: slot.lateByMs, records: entry.validRecords)
            }
            // A window being pushed already had its start-up: its margin is not owed again.
            let late = zip(planned, entry.pushing).filter { window, pushing in
                window.lateByMs > (pushing ? options.capacity.startupMs : 0)
            }.map(\.0)
            report.lateWindows += late.count
            if !entry.held {
                for (window, pushing) in zip(planned, entry.pushing) {
                    let enters = window.pushAt - options.horizonMs
                    let next = !pushing && enters > now ? min(enters, window.endsAt) : window.endsAt
                    report.nextChangeAt = min(report.nextChangeAt ?? next, next)
                }
            }
            var problems = entry.problems
            if let worst = late.map(\.lateByMs).max() {
                problems.append("\(late.count) of \(planned.count) windows still to push cannot finish by their deadline at "
                    + "\(Int(options.capacity.recordsPerSecond)) records/s (worst late by \(String(format: "%.1f", Double(worst) / 1000)) s); more tokens (tokens.max) would help.")
            }
            try await deliveries.saveCampaignState(campaignID: entry.campaign.id, clientAccountID: clientAccountID, problems: problems,
                                                   invalidRecords: entry.invalidRecords, now: now, on: connection)
            let sync = try await deliveries.syncWindows(campaignID: entry.campaign.id, clientAccountID: clientAccountID,
                                                        windows: planned, now: now, on: connection)
            report.windowsPlanned += sync.upserted
            report.recordsCancelled += sync.cancelled
        }

        let held = Set(entries.filter(\.held).map(\.campaign.id))
        for window in try await deliveries.windowsToMaterialize(clientAccountID: clientAccountID, horizonEnd: now + options.horizonMs,
                                                                 now: now, on: connection) where !held.contains(window.campaignID) {
            report.recordsCreated += try await deliveries.materialize(windowID: window.id, now: now, on: connection)
            report.recordsSuppressed += try await deliveries.suppressListed(clientAccountID: clientAccountID, windowID: window.id, now: now, on: connection)
            report.materialised += 1
        }
        if setsChanged {
            for window in live where window.state == .materialized && !held.contains(window.campaignID) {
                report.recordsCreated += try await deliveries.materialize(windowID: window.id, now: now, on: connection)
            }
            for entry in entries where materialised[entry.campaign.id] != nil {
                report.recordsCancelled += try await deliveries.cancelRemoved(campaignID: entry.campaign.id, now: now, on: connection)
            }
            report.recordsSuppressed += try await deliveries.suppressListed(clientAccountID: clientAccountID, now: now, on: connection)
        }
        return report
    }
}
