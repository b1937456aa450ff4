public import Config
import CallRecordAPI
import Foundation
public import Logging
import Metrics
import Planning
public import Postgres
import Prometheus
import ServiceLifecycle
import Scheduler
import Store
import TokenPool
public import UnixSignals

/// `callwindow run`: one planner service, one dispatcher (with its token pool) per client
/// account and the operations server, in one ServiceGroup that drains on SIGTERM/SIGINT. SIGHUP
/// reloads the accounts (`reload`): added ones start, removed ones drain, new keys mint.
public struct Daemon: Sendable {
    let settings: Configuration
    let database: PostgresConfiguration
    let logger: Logger
    /// SIGTERM and SIGINT, trapped since the process started; each one asks for a graceful
    /// shutdown. SIGHUP, when trapped too, reloads the accounts.
    let signals: UnixSignalsSequence
    /// Reads the configuration again, for SIGHUP (`nil`: SIGHUP only says it cannot reload).
    let reloadConfiguration: (@Sendable () throws -> Configuration)?

    /// A daemon for `settings` on `database`. `signals` should be trapped as the process starts,
    /// so that a signal arriving while the daemon starts up still stops it gracefully (or, a
    /// SIGHUP, reloads once it runs); `reloadConfiguration` reads the configuration a SIGHUP
    /// applies.
    public init(settings: Configuration, database: PostgresConfiguration, logger: Logger, signals: UnixSignalsSequence,
                reloadConfiguration: (@Sendable () throws -> Configuration)? = nil) {
        self.settings = settings
        self.database = database
        self.logger = logger
        self.signals = signals
        self.reloadConfiguration = reloadConfiguration
    }

    /// The host's clock: `SystemClock`, shifted by `CALLWINDOW_TEST_CLOCK_SKEW_MS` when that
    /// test-only variable is set (`scripts/chaos` scenario 8 runs daemons on clocks 20 s apart
    /// that way; calibration to the database must take the skew back out).
    static func hostClock(environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) -> any WallClock {
        guard let text = environment["CALLWINDOW_TEST_CLOCK_SKEW_MS"], !text.isEmpty else { return SystemClock() }
        guard let skew = Int64(text) else {
            logger.warning("CALLWINDOW_TEST_CLOCK_SKEW_MS is not a whole number of milliseconds; ignored")
            return SystemClock()
        }
        logger.warning("test only: the host clock is skewed", metadata: ["skew_ms": "\(skew)"])
        return OffsetClock(base: SystemClock(), offsetMs: skew)
    }

    /// The settings of the daemon's sessions on `database`: `queue` for the dispatchers' pool,
    /// `leader` for the planner and upkeep. The benchmarks use them too, so that they measure
    /// what the daemon does.
    public static func sessions(_ database: PostgresConfiguration) -> (queue: PostgresConfiguration, leader: PostgresConfiguration) {
        var queue = database
        // Every statement of the daemon is short, and the queue's statistics are always stale.
        // With JIT on, the upkeep's expiry of a 20,000-record queue compiled its plan on every
        // run (104 functions, 73 ms of a 73 ms statement that changed nothing).
        queue.jit = false
        // The daemon's transactions are a few statements with nothing awaited between them: one
        // idle for a minute belongs to a client cut off mid-transaction, whose row locks (a
        // claim's, a result write's) would otherwise hold those records until the server's TCP
        // keepalives gave up on it (two hours by default).
        queue.idleInTransactionTimeoutMs = 60_000
        var leader = queue
        // A statement that hangs (a lock never granted, a server in trouble) is cancelled rather
        // than holding a connection forever: 2 minutes for the queue's statements, 10 for the
        // leader's (materialising a window of a million records is one statement).
        queue.statementTimeoutMs = 120_000
        leader.statementTimeoutMs = 600_000
        // 30 s past the statement timeout a live server has answered, if only that it cancelled
        // the statement: a connection still silent died without a word (a black-holing network
        // or proxy), and is severed rather than waited on forever. (The leader's SessionWatchdog
        // acts sooner.)
        queue.answerTimeoutMs = queue.statementTimeoutMs.map { $0 + 30_000 }
        leader.answerTimeoutMs = leader.statementTimeoutMs.map { $0 + 30_000 }
        // The leader reaches the database at least every heartbeat (10 s): a session idle for a
        // minute belongs to a leader the server can no longer hear (a partition, a host gone),
        // and ending it releases its leads for another instance without waiting for the
        // server's TCP keepalives (two hours by default).
        leader.idleSessionTimeoutMs = 60_000
        return (queue, leader)
    }

    /// Runs until a signal's graceful shutdown has drained every service. Throws
    /// `CallWindowError` when it cannot start (no clients, no schema, a missing credential).
    public func run() async throws {
        // Every instance's time is the database's: leases, rescue, token expiry and the mint
        // ledger then agree across hosts whose clocks differ.
        let clock = CalibratedClock(raw: Self.hostClock(logger: logger))
        guard !settings.clients.isEmpty else {
            throw CallWindowError("no client accounts configured: add one under clients: in the configuration file")
        }
        let (queueDatabase, leaderDatabase) = Self.sessions(database)
        let pool = PostgresPool(configuration: queueDatabase, maxConnections: settings.database.poolSize)
        if let refusal = SchemaCheck.refusal(applied: try await SchemaCheck.appliedVersion(pool)) {
            await pool.close()
            throw CallWindowError(refusal)
        }
        let calibration = ClockCalibration(clock: clock, database: pool, logger: logger)
        if await calibration.calibrate() {
            logger.info("clock calibrated to the database", metadata: ["offset_ms": "\(clock.offset)"])
        }
        let api = Self.apiClient(settings)
        do {
            let cipher = try Self.tokenCipher(settings)
            if cipher.acceptsPreviousKey {
                logger.notice("token key rotation: stored tokens sealed with \(settings.tokens.oldKeyEnv) are still read; run callwindow tokens rekey, then unset it")
            }
            let credentials = try Self.credentials(settings)
            let instance = Self.instanceName()
            let scheduler = try Self.schedulerServices(
                settings: settings, database: leaderDatabase, pool: pool, api: api, cipher: cipher,
                instance: instance, credentials: credentials, clock: clock)
            try await serve(scheduler, pool: pool, instance: instance, clock: clock, calibration: calibration)
            // Results already received are written even after the grace period (up to 10 s
            // more); any the database could not take make the exit status say so.
            let unwritten = scheduler.dispatchers.reduce(0) { $0 + $1.unwrittenResults }
            if unwritten > 0 {
                throw CallWindowError("\(unwritten) results of attempts already made could not be written before shutdown; "
                    + "their records will be pushed again when their leases lapse")
            }
        } catch {
            try? await api.shutdown()
            await pool.close()
            throw error
        }
        try? await api.shutdown()
        await pool.close()
        logger.info("callwindow run stopped")
    }

    private func serve(_ scheduler: SchedulerServices, pool: PostgresPool, instance: String, clock: any WallClock,
                       calibration: ClockCalibration) async throws {
        let accounts: @Sendable () -> [UUID] = { scheduler.accounts }
        let authToken = try DashboardAuth.token(http: settings.http)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let perToken = Self.tokenPoolOptions(settings)
        let dashboard = Dashboard(
            database: pool, accounts: accounts,
            requestsPerSecondPerToken: Double(perToken.requestsPerWindow) * 1000 / Double(perToken.windowMs), actions: settings.http.actions,
            now: { clock.now() })
        let staleAfterMs = 3 * Leader.heartbeatMs + 30_000
        let planner = scheduler.planner
        let readiness = Readiness(database: pool, plannerLastCycleAt: { planner.lastCycleAt }, staleAfterMs: staleAfterMs, now: { clock.now() })
        // The operations server stays last: a group shuts its services down in reverse order,
        // and Hummingbird stops its server on SIGTERM by itself, which is only expected of the
        // first service told to stop.
        let services: [any Service] = scheduler.all + [
            calibration,
            OperationsSampler(
                registry: registry, database: pool, accounts: accounts, readiness: readiness, mintBudget: settings.tokens.mintBudget,
                mintWindowMs: Int64(settings.tokens.mintWindowSeconds) * 1_000, clock: clock, logger: Logger(label: "callwindow.metrics")),
            OperationsServer(
                host: settings.http.host, port: settings.http.port, registry: registry, database: pool, planner: planner,
                plannerStaleAfterMs: staleAfterMs, now: { clock.now() },
                dashboard: dashboard, authToken: authToken, logger: Logger(label: "callwindow.http")),
        ]
        logger.info("callwindow run starting", metadata: [
            "instance": "\(instance)", "clients": "\(scheduler.accounts.count)", "transport": "\(settings.api.transport.rawValue)",
            "database": "\(database.endpoint)",
        ])
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            logger: logger)
        // After the grace period in-flight sends are cancelled: their records go back to the
        // queue and the results gathered so far are still written.
        configuration.maximumGracefulShutdownDuration = .seconds(settings.scheduler.graceSeconds)
        let group = ServiceGroup(configuration: configuration)
        let (signals, logger) = (self.signals, self.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // A signal that arrived before the group runs is remembered by the group.
            tasks.addTask {
                var stopping = false
                for await signal in signals {
                    if signal == .sighup {
                        if stopping {
                            logger.notice("SIGHUP ignored: shutting down")
                        } else {
                            self.reload(scheduler)
                        }
                        continue
                    }
                    logger.info("graceful shutdown requested", metadata: ["signal": "\(signal)"])
                    stopping = true
                    await group.triggerGracefulShutdown()
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }
}

extension Daemon {
    /// SIGHUP: reads the configuration and the credentials again and serves exactly its accounts
    /// (`SchedulerServices.apply`), logging what changed (account ids, never a key). A
    /// configuration or credentials file that cannot be used is refused with a logged error, and
    /// the daemon keeps serving the accounts it had. Other changed settings are named as taking
    /// effect only at a restart.
    func reload(_ scheduler: SchedulerServices) {
        guard let reloadConfiguration else {
            logger.warning("SIGHUP ignored: this daemon has no configuration to reload")
            return
        }
        let changes: AccountChanges
        let next: Configuration
        do {
            next = try reloadConfiguration()
            guard !next.clients.isEmpty else {
                throw CallWindowError("no client accounts configured: add one under clients: in the configuration file")
            }
            changes = try scheduler.apply(try Self.credentials(next))
        } catch {
            logger.error("reload refused; still serving the accounts loaded before", metadata: [
                "error": "\(error)", "clients": "\(scheduler.accounts.count)",
            ])
            return
        }
        func names(_ ids: [UUID]) -> Logger.MetadataValue { "\(ids.map { $0.uuidString.lowercased() }.joined(separator: ","))" }
        logger.notice("accounts reloaded", metadata: [
            "added": names(changes.added), "removed": names(changes.removed), "rekeyed": names(changes.rekeyed),
            "unchanged": "\(changes.unchanged)", "clients": "\(scheduler.accounts.count)",
        ])
        let ignored = settings.sectionsChanged(in: next)
        if !ignored.isEmpty {
            logger.warning("reload: changed settings take effect only at a restart", metadata: ["sections": "\(ignored.joined(separator: ","))"])
        }
    }
}
