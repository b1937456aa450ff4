public import Foundation
public import Logging
public import Planning
public import Postgres
public import Prometheus
public import ServiceLifecycle
import Store

/// What `/readyz` checks: the database answers and the planner completed a cycle recently.
/// `callwindow_ready` samples the same check.
public struct Readiness: Sendable {
    let database: PostgresPool
    /// Epoch ms of the planner's last completed cycle (0 before the first).
    let plannerLastCycleAt: @Sendable () -> Int64
    /// The planner counts as alive if its last cycle ended within this many milliseconds.
    let staleAfterMs: Int64
    let now: @Sendable () -> Int64

    /// A check of `database` and of the planner's last cycle, stale after `staleAfterMs`.
    public init(database: PostgresPool, plannerLastCycleAt: @escaping @Sendable () -> Int64, staleAfterMs: Int64,
                now: @escaping @Sendable () -> Int64) {
        self.database = database
        self.plannerLastCycleAt = plannerLastCycleAt
        self.staleAfterMs = staleAfterMs
        self.now = now
    }

    /// What is wrong, in words; empty when ready.
    public func problems() async -> [String] {
        var problems: [String] = []
        do {
            try await SchemaCheck.ping(database)
        } catch {
            problems.append("database unreachable")
        }
        let last = plannerLastCycleAt()
        if last == 0 || now() - last > staleAfterMs {
            problems.append("the planner has not reached the database recently")
        }
        return problems
    }
}

/// Samples, every `intervalMs` on the injected clock, the figures the alerting rules
/// (`config/alerts.yml`) need and no other service computes: `callwindow_ready` (1 when
/// `/readyz` would answer 200, else 0), and per account `callwindow_token_mints_window` (mints in
/// the shared budget's window, by every instance, from the token ledger),
/// `callwindow_token_mint_budget` and `callwindow_queue_due` (records pending or in flight whose
/// push time has come). Two statements per sample (the readiness ping and one for every
/// account together), whatever the number of accounts.
public struct OperationsSampler: Service {
    let registry: PrometheusCollectorRegistry
    let database: PostgresPool
    /// The accounts served now (a reload changes them).
    let accounts: @Sendable () -> [UUID]
    let readiness: Readiness
    let mintBudget: Int
    let mintWindowMs: Int64
    let intervalMs: Int64
    let clock: any WallClock
    let logger: Logger
    let store = DashboardStore()

    /// A sampler of `accounts` into `registry`.
    public init(registry: PrometheusCollectorRegistry, database: PostgresPool, accounts: [UUID], readiness: Readiness, mintBudget: Int,
                mintWindowMs: Int64, intervalMs: Int64 = 10_000, clock: any WallClock, logger: Logger) {
        self.init(registry: registry, database: database, accounts: { accounts }, readiness: readiness, mintBudget: mintBudget,
                  mintWindowMs: mintWindowMs, intervalMs: intervalMs, clock: clock, logger: logger)
    }

    /// A sampler of the accounts `accounts` returns at each sample (those a reload leaves).
    public init(registry: PrometheusCollectorRegistry, database: PostgresPool, accounts: @escaping @Sendable () -> [UUID], readiness: Readiness,
                mintBudget: Int, mintWindowMs: Int64, intervalMs: Int64 = 10_000, clock: any WallClock, logger: Logger) {
        self.registry = registry
        self.database = database
        self.accounts = accounts
        self.readiness = readiness
        self.mintBudget = mintBudget
        self.mintWindowMs = mintWindowMs
        self.intervalMs = intervalMs
        self.clock = clock
        self.logger = logger
    }

    /// Samples until the service group shuts down. A sample under way is never cancelled (a
    /// database call torn in the middle could cost a connection the result writers need while
    /// they drain): the loop checks for the shutdown between samples and each second of its wait.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await sample()
            let next = clock.now() + intervalMs
            while !Task.isShuttingDownGracefully && !Task.isCancelled && clock.now() < next {
                do {
                    try await clock.sleep(until: min(next, clock.now() + 1_000))
                } catch {
                    return
                }
            }
        }
    }

    /// The gauges' names and help texts.
    static var ready: MetricNameDescriptor { gauge("callwindow_ready", "1 when /readyz would answer 200, else 0") }
    static var tokenMintsWindow: MetricNameDescriptor { gauge("callwindow_token_mints_window", "mints in the shared budget's window, by every instance") }
    static var tokenMintBudget: MetricNameDescriptor { gauge("callwindow_token_mint_budget", "the configured mint budget") }
    static var queueDue: MetricNameDescriptor { gauge("callwindow_queue_due", "deliveries pending or in flight whose push time has come") }
    static func gauge(_ name: String, _ help: String) -> MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }

    /// One sample of every gauge. A database error leaves the account gauges at their last
    /// value (readiness then reports the database) and is logged.
    func sample() async {
        let ready = await readiness.problems().isEmpty
        registry.makeGauge(descriptor: Self.ready).set(to: ready ? 1 : 0)
        let now = clock.now()
        let accounts = self.accounts()
        do {
            let figures = try await database.withConnection { connection in
                try await store.alertFigures(accounts, mintWindowMs: mintWindowMs, now: now, on: connection)
            }
            for account in accounts {
                let figure = figures[account] ?? AlertFigures(mints: 0, due: 0)
                let labels = [("client", account.uuidString.lowercased())]
                registry.makeGauge(descriptor: Self.tokenMintsWindow, labels: labels).set(to: Double(figure.mints))
                registry.makeGauge(descriptor: Self.tokenMintBudget, labels: labels).set(to: Double(mintBudget))
                registry.makeGauge(descriptor: Self.queueDue, labels: labels).set(to: Double(figure.due))
            }
        } catch {
            logger.warning("cannot sample the alerting gauges", metadata: ["error": "\(error)"])
        }
    }
}
