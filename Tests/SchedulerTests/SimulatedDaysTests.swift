import CallRecordAPI
import Foundation
import Logging
import Planning
import Postgres
import Sandbox
import Scheduler
import ServiceLifecycle
import Store
import TestSupport
import Testing
import TokenPool

/// Three days of campaigns in simulated time: the planner service, the dispatcher with its token
/// pool, and the sandbox all run in this process on one `ManualClock`, against a real database.
@Suite("Three simulated days: daemon services and sandbox on one injected clock", .timeLimit(.minutes(5)))
struct SimulatedDaysTests {
    @Test("a 3-day campaign with daily hours and a 3-day all-day campaign: every window is pushed whole, before its deadline")
    func threeDays() async throws {
        // 2026-12-01 00:00 UTC. No product SQL reads the database's now(): everything runs on this clock.
        let start: Int64 = 1_796_083_200_000
        let clock = ManualClock(start: start)
        // A database of its own: the loop below reads the whole queue.
        let configuration = try await TestDatabase.fresh("sim")
        try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
            try await TestDatabase.migrate(connection)
            let fixture = PlannerFixture(
                connection: connection,
                // The daemon's default push margin (scheduler.push_margin_seconds: 10).
                planner: Planner(options: PlannerOptions(capacity: Capacity(tokens: 2, startupMs: 10_000)),
                                 deliveries: DeliveryStore(instance: "simulated", transport: .v1), logger: Logger(label: "test")))
            try await CampaignSeed.label(client: fixture.client, label: fixture.label, on: connection)
            let daily: Int64 = try await fixture.connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, time_zone, daily_start, daily_end, lead, call_reason)
                VALUES ($1, 'office hours', $2, callwindow.at_ms($3), callwindow.at_ms($3) + interval '3 days', 'Asia/Kolkata', '09:00', '17:00',
                        '10 minutes', 'Your parcel arrives today') RETURNING id
                """, fixture.client, fixture.label, start + 3_600_000)[0].decode("id")
            try await fixture.connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930000001'), ($1, '4930000002')", daily)
            try await fixture.connection.execute(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4915100000000 + g)::text FROM generate_series(1, 150) g", daily)
            let allDay: Int64 = try await fixture.connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead)
                VALUES ($1, 'all day', $2, callwindow.at_ms($3), callwindow.at_ms($3) + interval '3 days', '5 minutes') RETURNING id
                """, fixture.client, fixture.label, start + 5_400_000)[0].decode("id")
            try await fixture.connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930000003')", allDay)
            try await fixture.connection.execute(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4915200000000 + g)::text FROM generate_series(1, 400) g", allDay)

            let account = SandboxAccount(client: fixture.client, label: fixture.label)
            let key = account.key
            let sandbox = try SandboxServer(configuration: account.configuration(), clock: clock, port: 0)
            let logger = {
                var logger = Logger(label: "simulated")
                logger.logLevel = .warning
                return logger
            }()
            try await sandbox.withRunning { port in
                let database = PostgresPool(configuration: configuration, maxConnections: 6)
                // Simulated time stands still while a request is out, so the client may wait long in
                // real time (a loaded machine); the pool's simulated lease and request timeout match.
                let api = APIClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 10_000, requestTimeoutMs: 40_000))
                // Stop everything whatever happens: an APIClient must be shut down before it goes.
                var failure: (any Error)?
                do {
                    let cipher = try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
                    let tokens = try TokenPool(
                        configuration: .init(clientAccountID: fixture.client, key: key, transport: .v1, instance: "simulated"),
                        options: TokenPoolOptions(maxTokens: 2, leaseMs: 200_000, requestTimeoutMs: 60_000),
                        ledger: TokenStore(pool: database, cipher: cipher), api: api, clock: clock,
                        logger: logger)
                    // Wired as the daemon wires them: the leader wakes the dispatcher when deliveries are due.
                    let wakes = DueWakes(accounts: [fixture.client])
                    let dispatcher = Dispatcher(clientAccountID: fixture.client, database: database, tokens: tokens,
                                                store: fixture.planner.deliveries, owner: "simulated",
                                                options: DispatcherOptions(claimBatch: 100, maxBatches: 2), wake: wakes.signal(for: fixture.client),
                                                clock: clock, logger: logger)
                    let planner = Leader(configuration: configuration, clients: [fixture.client], planner: fixture.planner,
                                         clock: clock, wakes: wakes, logger: logger)
                    // Graceful shutdown ends every sleep on the clock: nothing needs time to move.
                    try await withServices([planner, dispatcher], logger: logger) {
                        // Simulated time moves only here, and only when the services have settled: no
                        // statement on the pool, no request in flight, no token being leased or minted,
                        // and the same sleepers on the clock across a look a few milliseconds apart. Then the clock goes to the earliest
                        // sleeper's deadline — or, across an idle gap, to a second before the next push.
                        let settled = {
                            try await waitUntil(timeout: .seconds(60), interval: .milliseconds(1), "the services to settle on the simulated clock") {
                                let before = (clock.sleepsStarted, clock.sleeperCount)
                                guard database.connectionsInUse == 0, !tokens.isBusy, before.1 >= 2 else { return false }
                                for _ in 0..<20 { await Task.yield() }
                                try await Task.sleep(for: .milliseconds(2))
                                return database.connectionsInUse == 0 && !tokens.isBusy && (clock.sleepsStarted, clock.sleeperCount) == before
                            }
                        }
                        let end = start + 4 * 86_400_000
                        var steps = 0
                        try await waitUntil(timeout: .seconds(30), "the planner's first cycle") { planner.lastCycleAt > 0 }
                        while clock.now() < end {
                            try await settled()
                            let state = try await fixture.connection.query(
                                """
                                SELECT (SELECT count(*) FROM callwindow.deliveries WHERE state IN ('pending', 'in_flight')
                                         AND push_at <= callwindow.at_ms($1))::int8 AS due,
                                       (SELECT callwindow.ms_of(min(push_at)) FROM callwindow.windows
                                         WHERE state IN ('planned', 'materialized') AND push_at > callwindow.at_ms($1)) AS next,
                                       (SELECT count(*) FROM callwindow.deliveries WHERE state IN ('pending', 'in_flight'))::int8
                                     + (SELECT count(*) FROM callwindow.windows WHERE state = 'planned' AND ends_at > callwindow.at_ms($1))::int8 AS open
                                """, clock.now())[0]
                            let due: Int64 = try state.decode("due")
                            let next: Int64? = try state.decode("next")
                            if due == 0, let next, next - clock.now() > 2_000 {
                                clock.set(to: next - 1_000)
                                let jumpedTo = clock.now()
                                try await waitUntil(timeout: .seconds(30), "the planner to run a cycle after a jump") { planner.lastCycleAt >= jumpedTo }
                            } else if due == 0, next == nil, try state.decode("open", as: Int64.self) == 0 {
                                break
                            } else {
                                try #require(clock.advanceToNextDeadline() != nil, "work is due but nothing sleeps on the clock")
                            }
                            steps += 1
                            try #require(steps < 200_000, "the simulation does not converge")
                        }
                        print("simulated days: \(steps) steps to \(clock.now() - start) ms of simulated time")
                    }
                } catch {
                    print("simulated days failed: \(error)")
                    failure = error
                }
                try await api.shutdown()
                await database.close()
                if let failure { throw failure }
            }

            let windows = try await fixture.connection.query(
                """
                SELECT w.campaign_id, w.records, callwindow.ms_of(w.deadline) AS deadline, w.state,
                       count(a.*) FILTER (WHERE a.outcome = 'accepted')::int8 AS accepted,
                       coalesce(callwindow.ms_of(max(a.attempted_at) FILTER (WHERE a.outcome = 'accepted')), 0) AS last_push
                  FROM callwindow.windows w
                  LEFT JOIN callwindow.push_attempts a ON a.window_id = w.id
                 GROUP BY w.id ORDER BY w.starts_at
                """)
            let dailyWindows = try windows.filter { try $0.decode("campaign_id", as: Int64.self) == daily }
            let allDayWindows = try windows.filter { try $0.decode("campaign_id", as: Int64.self) == allDay }
            #expect(dailyWindows.count == 3, "three office-hours windows (one per day)")
            #expect(allDayWindows.count == 3, "three 24-hour windows")
            for window in windows {
                let records: Int = try window.decode("records")
                let accepted: Int64 = try window.decode("accepted")
                let lastPush: Int64 = try window.decode("last_push")
                let deadline: Int64 = try window.decode("deadline")
                #expect(Int(accepted) == records, "every record of the window accepted exactly once")
                #expect(lastPush <= deadline, "pushed \(lastPush - deadline) ms after the deadline")
                #expect(try window.decode("state", as: String.self) == "materialized", "a window that ended stays as it was, not cancelled")
            }
            let problems = try await fixture.connection.query(
                "SELECT array_to_string(problems, ' | ') AS p FROM callwindow.campaign_state WHERE cardinality(problems) > 0")
            let reported = try problems.map { try $0.decode("p", as: String.self) }
            #expect(reported.isEmpty, "no campaign reports a problem once everything was pushed in time: \(reported)")
            let stats = sandbox.stats()
            #expect(stats.accepted == 3 * 300 + 3 * 400)
            #expect(stats.rateLimited == 0)
            #expect(stats.tokens.values.allSatisfy { $0.peak1s <= 100 })
            let mints = try await fixture.connection.query("SELECT count(*)::int8 AS n FROM callwindow.token_mints WHERE client_account_id = $1", fixture.client)
            print("simulated days: \(try mints[0].decode("n", as: Int64.self)) mints over 4 simulated days, \(windows.count) windows")
        }
    }
}
