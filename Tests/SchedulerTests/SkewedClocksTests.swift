import CallRecordAPI
import Foundation
import Logging
import Planning
import Postgres
import Sandbox
import Scheduler
import ServiceLifecycle
import Store
import Synchronization
import TestSupport
import Testing
import TokenPool

/// Two instances, one on a host clock 20 s fast and one 20 s slow, serve one account (two tokens)
/// with a backlog, on simulated time, against one database and one sandbox that enforces the
/// API's limits. The slow one takes a token first; the fast one then wants both; the slow one is
/// restarted every 2 s (drained as at SIGTERM: its token released, then a new process). Token
/// leases and the released token's "quiet after" are written on one instance's clock and read on
/// the other's: only clocks that agree keep a token in one process at a time and a hand-over a
/// second apart.
///
/// Each instance calibrates to the reference every instance shares, as `ClockCalibration` does
/// against the database's clock in the daemon. Here the reference is the simulated time (the
/// sandbox keeps it too), since the database's own clock is real time, which a simulation does
/// not move. The second test leaves the fast instance uncalibrated, to show the scenario fails
/// without calibration.
@Suite("Limits hold across processes whose clocks disagree by 40 s", .timeLimit(.minutes(5)))
struct SkewedClocksTests {
    struct Outcome {
        var stats: SandboxStats
        var restarts: Int
        var accepted: Int64
        var auditedOnce: Int64
    }

    @Test("two instances on host clocks 20 s fast and 20 s slow, calibrated, the slow one restarted every 2 s: no 429, no token above 100 in any second, at most tokens.max mints, every record once")
    func calibratedInstancesKeepTheLimits() async throws {
        let outcome = try await run(records: 3_000, maxTurns: 40)
        #expect(outcome.stats.rateLimited == 0, "no 429")
        #expect(outcome.stats.tokens.values.allSatisfy { $0.peak1s <= 100 }, "\(outcome.stats.tokens.values.map(\.peak1s))")
        #expect(outcome.stats.mintsRefused == 0 && outcome.stats.tokensMinted <= 2, "tokens.max mints at most, leased from then on: \(outcome.stats.tokensMinted) minted, \(outcome.stats.mintsRefused) refused")
        #expect(outcome.stats.unauthorized == 0)
        #expect(outcome.restarts >= 5, "the slow instance was restarted \(outcome.restarts) times")
        #expect(outcome.accepted == 3_000)
        #expect(outcome.stats.accepted == 3_000, "every record accepted once by the API")
        #expect(outcome.auditedOnce == 3_000)
    }

    @Test("the same scenario with the fast instance not calibrated gets 429s (the test above can fail)")
    func anUncalibratedClockBreaksTheLimit() async throws {
        let outcome = try await run(calibrateFast: false, records: 3_000, maxTurns: 4)
        #expect(outcome.stats.rateLimited > 0, "the fast instance read the slow one's leases and 'quiet after' as 20 s older than they were")
    }

    func run(calibrateFast: Bool = true, records: Int, maxTurns: Int) async throws -> Outcome {
        let start: Int64 = 1_796_083_200_000
        let clock = ManualClock(start: start)
        let configuration = try await TestDatabase.fresh("skew")
        return try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
            try await TestDatabase.migrate(connection)
            let client = UUID(), label = UUID()
            try await CampaignSeed.label(client: client, label: label, on: connection)
            let deliveries = DeliveryStore(instance: "skew", transport: .v1)
            _ = try await deliveries.ensureAuditPartitions(now: start, monthsAhead: 2, on: connection)
            let planner = Planner(options: PlannerOptions(capacity: Capacity(tokens: 2, startupMs: 10_000)), deliveries: deliveries,
                                  logger: Logger(label: "test"))
            // A backlog due at once, even on the slow clock (pushed from a minute before the
            // simulation's start): 2 callers × records/2 receivers, for one token of 100/s.
            var seed = CampaignSeed(client: client, label: label, startsAt: start + 120_000, endsAt: start + 3_600_000)
            seed.lead = "3 minutes"
            seed.callers = ["4930000001", "4930000002"]
            seed.receivers = records / 2
            let campaign = try await seed.insert(on: connection)

            let account = SandboxAccount(client: client, label: label)
            let sandbox = try SandboxServer(configuration: account.configuration(), clock: clock, port: 0)
            let logger = {
                var logger = Logger(label: "skew")
                logger.logLevel = .warning
                return logger
            }()
            let turns = try await sandbox.withRunning { port -> Int in
                let database = PostgresPool(configuration: configuration, maxConnections: 8)
                let api = APIClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 1_000, requestTimeoutMs: 4_000))
                var failure: (any Error)?
                var turns = 0
                do {
                    let cipher = try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
                    let ledger = TokenStore(pool: database, cipher: cipher)
                    let wakes = DueWakes(accounts: [client])
                    /// One instance's process: its host clock (calibrated, unless it is the fast one and
                    /// `calibrateFast` is false), its pool, its dispatcher.
                    @Sendable func instance(_ name: String, skewMs: Int64) throws -> (tokens: TokenPool, dispatcher: Dispatcher) {
                        let raw = OffsetClock(base: clock, offsetMs: skewMs)
                        let instanceClock = CalibratedClock(raw: raw)
                        if skewMs < 0 || calibrateFast {
                            let before = raw.now()
                            instanceClock.calibrate([.init(before: before, reference: clock.now(), after: raw.now())])
                        }
                        let tokens = try TokenPool(
                            configuration: .init(clientAccountID: client, key: account.key, transport: .v1, instance: name),
                            options: TokenPoolOptions(maxTokens: 2, leaseMs: 12_000, requestTimeoutMs: 6_000),
                            ledger: ledger, api: api, clock: instanceClock, logger: logger)
                        let dispatcher = Dispatcher(clientAccountID: client, database: database, tokens: tokens, store: deliveries, owner: name,
                                                    options: DispatcherOptions(claimBatch: 50), wake: wakes.signal(for: client),
                                                    clock: instanceClock, logger: logger)
                        return (tokens, dispatcher)
                    }
                    let leader = Leader(configuration: configuration, clients: [client], planner: planner, clock: clock, wakes: wakes, logger: logger)
                    @Sendable func accepted() async throws -> Int64 {
                        try await connection.query(
                            "SELECT count(*) FILTER (WHERE state = 'accepted')::int8 AS n FROM callwindow.deliveries WHERE campaign_id = $1",
                            campaign)[0].decode("n")
                    }
                    // Simulated time moves whenever nothing runs (no query out, no pool busy)
                    // and something sleeps on the clock, through starts and drains alike.
                    let pools = Mutex<[String: TokenPool]>([:])
                    let stopped = Mutex<Set<String>>([])
                    let busy: @Sendable () -> Bool = { database.connectionsInUse > 0 || pools.withLock { $0.values.contains { $0.isBusy } } }
                    turns = try await withSimulatedTime(on: clock, timeout: .seconds(240), busy: busy, "two instances, one restarted") {
                        try await withServices([leader], logger: logger) {
                            try await waitUntil(timeout: .seconds(30), "the planner's first cycle") { leader.lastCycleAt > 0 }
                            return try await withThrowingTaskGroup(of: Void.self, returning: Int.self) { group in
                                let finished: @Sendable (String) -> Void = { name in
                                    pools.withLock { $0[name] = nil }
                                    stopped.withLock { _ = $0.insert(name) }
                                }
                                // The slow instance first, until it holds a token; then the fast one,
                                // which wants tokens too (the backlog needs 20) while the slow one holds
                                // the account's second.
                                var slow = try instance("slow-0", skewMs: -20_000).dispatcher
                                pools.withLock { $0["slow-0"] = slow.tokenPool }
                                let first = slow
                                group.addTask { try await first.run(); finished("slow-0") }
                                try await waitUntil(timeout: .seconds(60), "the slow instance holds a token") { slow.tokenPool.capacity > 0 }
                                let fast = try instance("fast", skewMs: 20_000).dispatcher
                                pools.withLock { $0["fast"] = fast.tokenPool }
                                group.addTask { try await fast.run(); finished("fast") }
                                var restarts = 0
                                while restarts < maxTurns, try await accepted() < Int64(records) {
                                    let ends = clock.now() + 2_000
                                    try await waitUntil(timeout: .seconds(60), "2 s of simulated time") {
                                        if clock.now() >= ends { return true }
                                        return try await accepted() >= Int64(records)
                                    }
                                    // Restarted: drained as at SIGTERM (its tokens released), then a new process.
                                    let name = "slow-\(restarts)"
                                    slow.drain()
                                    try await waitUntil(timeout: .seconds(60), "\(name) drained") { stopped.withLock { $0.contains(name) } }
                                    restarts += 1
                                    let next = "slow-\(restarts)"
                                    slow = try instance(next, skewMs: -20_000).dispatcher
                                    pools.withLock { $0[next] = slow.tokenPool }
                                    let restarted = slow
                                    group.addTask { try await restarted.run(); finished(next) }
                                }
                                slow.drain()
                                fast.drain()
                                try await group.waitForAll()
                                return restarts
                            }
                        }
                    }
                } catch {
                    failure = error
                }
                try await api.shutdown()
                await database.close()
                if let failure { throw failure }
                return turns
            }
            let audit = try await connection.query(
                "SELECT count(DISTINCT delivery_id)::int8 AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'accepted'", campaign)
            return Outcome(stats: sandbox.stats(), restarts: turns, accepted: try await {
                try await connection.query(
                    "SELECT count(*) FILTER (WHERE state = 'accepted')::int8 AS n FROM callwindow.deliveries WHERE campaign_id = $1", campaign
                )[0].decode("n", as: Int64.self)
            }(), auditedOnce: try audit[0].decode("n", as: Int64.self))
        }
    }
}
