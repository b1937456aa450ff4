import CallRecordAPI
import Foundation
import Logging
import Planning
import Postgres
import Sandbox
import Scheduler
import Store
import TestSupport
import Testing
import TokenPool

@Suite("Planner and dispatcher against the sandbox and a real database", .timeLimit(.minutes(3)))
struct DispatcherTests {
    @Test("every record of a window due now is accepted once, audited, and no token exceeds its rate")
    func pushesAWindow() async throws {
        let clock = SystemClock()
        try await closing(try await PlannerFixture.make(tokens: 2), connection: { $0.connection }) { fixture throws in
            let account = SandboxAccount(client: fixture.client, label: fixture.label)
            let key = account.key
            let sandbox = try SandboxServer(configuration: account.configuration(), clock: clock, port: 0)
            // A one-hour window starting in 32 s with a 30 s lead: its deadline is 2 s away, so the
            // push is due at once (slightly late at 160 records/s).
            let starts = clock.now() + 32_000
            var seed = CampaignSeed(client: fixture.client, label: fixture.label, startsAt: starts, endsAt: starts + 3_600_000)
            seed.name = "due now"
            seed.lead = "30 seconds"
            seed.callReason = "Your parcel arrives today"
            seed.callers = ["4930000001", "4930000002", "4930000003"]
            seed.receivers = 100
            let campaign = try await seed.insert(on: fixture.connection)
            let planned = try await fixture.planner.cycle(clientAccountID: fixture.client, now: clock.now(), on: fixture.connection)
            #expect(planned.recordsCreated == 300)

            try await sandbox.withRunning { port in
                try await closing(try await TestDatabase.pool(maxConnections: 4)) { database throws in
                    try await APIClient.withClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 2_000, requestTimeoutMs: 3_000)) { api in
                        let cipher = try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
                        let tokens = try TokenPool(
                            configuration: .init(clientAccountID: fixture.client, key: key, transport: .v1, instance: "dispatcher-test"),
                            options: TokenPoolOptions(maxTokens: 2), ledger: TokenStore(pool: database, cipher: cipher), api: api, clock: clock)
                        let dispatcher = Dispatcher(clientAccountID: fixture.client, database: database, tokens: tokens,
                                                    store: fixture.planner.deliveries, owner: "dispatcher-test", options: DispatcherOptions(claimBatch: 100),
                                                    clock: clock, logger: Logger(label: "test"))
                        try await withServices([dispatcher], logger: Logger(label: "test")) {
                            try await waitUntil(timeout: .seconds(120), "every record accepted") { dispatcher.counts.accepted == 300 }
                        }
                    }
                }
            }
            let stats = sandbox.stats()
            // Only a lost answer (the client's own timeout on a loaded machine) may apply a record twice.
            let lost = try await fixture.connection.query(
                "SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'transient' AND reason LIKE 'timeout%'",
                campaign)[0].decode("n", as: Int.self)
            #expect(stats.accepted >= 300 && stats.accepted <= 300 + lost, "\(stats.accepted) applied, \(lost) answers lost")
            #expect(stats.rateLimited == 0)
            #expect(stats.tokens.values.allSatisfy { $0.peak1s <= 100 })
            let progress = try await fixture.connection.query(
                "SELECT accepted, pending, in_flight FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
            #expect(try progress.decode("accepted", as: Int.self) == 300)
            #expect(try progress.decode("pending", as: Int.self) == 0)
            let audit = try await fixture.connection.query(
                "SELECT count(*) AS n, count(DISTINCT delivery_id) AS records, bool_and(token_fingerprint ~ '^[0-9a-f]{12}$') AS fingerprints FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'accepted'",
                campaign)[0]
            #expect(try audit.decode("records", as: Int.self) == 300)
            #expect(try audit.decode("n", as: Int.self) == 300)
            #expect(try audit.decode("fingerprints", as: Bool.self))
        }
    }
}
