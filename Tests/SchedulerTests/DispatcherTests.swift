import CallRecordAPI
import Foundation
import Ledger
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
    /// What a dispatcher test runs against: a window of `3 × receivers` records due now, planned
    /// and materialised; the sandbox running on `port`; a pool of database connections; the API
    /// client; and the account's token ledger.
    struct Bench: Sendable {
        let fixture: PlannerFixture
        let account: SandboxAccount
        let campaign: Int64
        let sandbox: SandboxServer
        let database: PostgresPool
        let api: APIClient
        let ledger: TokenStore
        let clock: any WallClock

        func pool(maxTokens: Int, instance: String) throws -> TokenPool {
            try TokenPool(configuration: .init(clientAccountID: fixture.client, key: account.key, transport: .v1, instance: instance),
                          options: TokenPoolOptions(maxTokens: maxTokens), ledger: ledger, api: api, clock: clock)
        }

        func dispatcher(_ tokens: TokenPool, owner: String, claimBatch: Int = 100, leaseMs: Int64 = 60_000) -> Dispatcher {
            Dispatcher(clientAccountID: fixture.client, database: database, tokens: tokens, store: fixture.planner.deliveries, owner: owner,
                       options: DispatcherOptions(claimBatch: claimBatch, leaseMs: leaseMs), clock: clock, logger: Logger(label: "test"))
        }
    }

    static func withDueWindow(receivers: Int = 100, faults: SandboxConfiguration.Faults = .init(),
                              _ body: @Sendable (Bench) async throws -> Void) async throws {
        let clock = SystemClock()
        try await closing(try await PlannerFixture.make(tokens: 2), connection: { $0.connection }) { fixture throws in
            let account = SandboxAccount(client: fixture.client, label: fixture.label)
            let sandbox = try SandboxServer(configuration: account.configuration(faults: faults), clock: clock, port: 0)
            // A one-hour window starting in 32 s with a 30 s lead: its deadline is 2 s away, so the
            // push is due at once (slightly late at 160 records/s).
            let starts = clock.now() + 32_000
            var seed = CampaignSeed(client: fixture.client, label: fixture.label, startsAt: starts, endsAt: starts + 3_600_000)
            seed.name = "due now"
            seed.lead = "30 seconds"
            seed.callReason = "Your parcel arrives today"
            seed.callers = ["4930000001", "4930000002", "4930000003"]
            seed.receivers = receivers
            let campaign = try await seed.insert(on: fixture.connection)
            let planned = try await fixture.planner.cycle(clientAccountID: fixture.client, now: clock.now(), on: fixture.connection)
            #expect(planned.recordsCreated == 3 * receivers)

            try await sandbox.withRunning { port in
                try await closing(try await TestDatabase.pool(maxConnections: 4)) { database throws in
                    try await APIClient.withClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 2_000, requestTimeoutMs: 3_000)) { api in
                        let cipher = try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
                        try await body(Bench(fixture: fixture, account: account, campaign: campaign, sandbox: sandbox, database: database,
                                             api: api, ledger: TokenStore(pool: database, cipher: cipher), clock: clock))
                    }
                }
            }
        }
    }

    @Test("every record of a window due now is accepted once, audited, and no token exceeds its rate")
    func pushesAWindow() async throws {
        try await Self.withDueWindow { bench in
            let (fixture, campaign, sandbox) = (bench.fixture, bench.campaign, bench.sandbox)
            let dispatcher = bench.dispatcher(try bench.pool(maxTokens: 2, instance: "dispatcher-test"), owner: "dispatcher-test")
            try await withServices([dispatcher], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(120), "every record accepted") { dispatcher.counts.accepted == 300 }
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

    @Test("an instance that cannot get a token claims nothing: the due records wait in the queue, and go once a token can be leased")
    func noTokenNoClaim() async throws {
        try await Self.withDueWindow(receivers: 50) { bench in
            let client = bench.fixture.client
            // Another instance has spent the account's mint budget (10 in 30 minutes).
            for _ in 0..<10 {
                let reservation = try await bench.ledger.reserveMint(clientAccountID: client, instance: "elsewhere", now: bench.clock.now(),
                                                                     windowMs: 1_800_000, decide: { _ in nil })
                guard case .reserved(id: let id) = reservation else { Issue.record("the mint was refused"); return }
                try await bench.ledger.finishMint(id: id, fingerprint: nil, expiresAt: nil, answeredAt: bench.clock.now())
            }
            let tokens = try bench.pool(maxTokens: 2, instance: "starved")
            let dispatcher = bench.dispatcher(tokens, owner: "starved")
            try await withServices([dispatcher], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(30), "the mint budget refused a mint") { tokens.acquireBlockedUntil > 0 }
                let held = try await bench.fixture.connection.query(
                    "SELECT count(*) FILTER (WHERE state = 'in_flight') AS n, count(*) FILTER (WHERE state = 'pending') AS p FROM callwindow.deliveries WHERE campaign_id = $1",
                    bench.campaign)[0]
                #expect(dispatcher.counts.claimed == 0, "nothing claimed without a token")
                #expect(try held.decode("n", as: Int.self) == 0)
                #expect(try held.decode("p", as: Int.self) == 150, "every due record waits in the queue for an instance with a token")

                // A token stored by an instance that died (its lease lapsed) is leased within
                // seconds, although the budget's next mint is half an hour away, and the window goes.
                let minted = try await bench.api.mintToken(clientAccountID: client, key: bench.account.key)
                let now = bench.clock.now()
                try await bench.ledger.insert(clientAccountID: client, secret: minted.token.secret, fingerprint: minted.token.fingerprint,
                                              mintedAt: now, expiresAt: now + 3_600_000, owner: "crashed", leaseExpiresAt: now - 1)
                try await waitUntil(timeout: .seconds(60), "every record accepted") { dispatcher.counts.accepted == 150 }
            }
            #expect(tokens.fingerprints.isEmpty, "the lease is released at shutdown")
        }
    }
    @Test("what the API accepted is written while the batch is still out, not when all of it is over: a kill then repeats only what was in flight; the batch's lease renewals skip what is written")
    func resultsAreWrittenAsTheyCome() async throws {
        try await Self.withDueWindow(receivers: 100) { bench in
            let (fixture, campaign, sandbox) = (bench.fixture, bench.campaign, bench.sandbox)
            // The whole window (300 records) is one batch; its leases are renewed every 0.5 s.
            let dispatcher = bench.dispatcher(try bench.pool(maxTokens: 2, instance: "groups"), owner: "groups", claimBatch: 300, leaseMs: 1_500)
            func written() async throws -> (accepted: Int, inFlight: Int) {
                let row = try await fixture.connection.query(
                    "SELECT count(*) FILTER (WHERE state = 'accepted') AS a, count(*) FILTER (WHERE state = 'in_flight') AS f FROM callwindow.deliveries WHERE campaign_id = $1",
                    campaign)[0]
                return (try row.decode("a", as: Int.self), try row.decode("f", as: Int.self))
            }
            try await withServices([dispatcher], logger: Logger(label: "test")) {
                try await waitUntil(timeout: .seconds(60), "the API accepted 20 records") { sandbox.stats().accepted >= 20 }
                // Every push is answered 429 from now on: the rest of the batch waits in back-off.
                sandbox.startStorm(milliseconds: 600_000)
                let acceptedBeforeStorm = sandbox.stats().accepted
                try await waitUntil(timeout: .seconds(30), "the accepted records written while the batch is out") {
                    (try? await written().accepted) ?? 0 >= min(20, acceptedBeforeStorm)
                }
                let during = try await written()
                #expect(during.inFlight > 0, "the batch is still out: \(during.inFlight) records in flight")
                // Counted once its group's write committed (a moment after the rows can be read).
                try await waitUntil(timeout: .seconds(30), "the written records counted (counted \(dispatcher.counts.accepted), written \(during.accepted))") {
                    dispatcher.counts.accepted == (try await written().accepted)
                }
                // Renewals while the written ones are out of the queue: none counts them as lost.
                let renewals = dispatcher.counts.leaseRenewals
                try await waitUntil(timeout: .seconds(30), "two lease renewals after the write") { dispatcher.counts.leaseRenewals >= renewals + 2 }
                #expect(dispatcher.counts.leasesLost == 0, "\(dispatcher.counts.leasesLost) leases counted lost; nothing rescued them")
                sandbox.endStorm()
                try await waitUntil(timeout: .seconds(120), "every record accepted") { dispatcher.counts.accepted == 300 }
            }
            let after = try await written()
            #expect(after.accepted == 300)
            let audit = try await fixture.connection.query(
                "SELECT count(DISTINCT delivery_id) FILTER (WHERE outcome = 'accepted') AS a, count(*) FILTER (WHERE outcome = 'rate_limited') AS r FROM callwindow.push_attempts WHERE campaign_id = $1",
                campaign)[0]
            #expect(try audit.decode("a", as: Int.self) == 300, "every accepted record audited once")
            #expect(try audit.decode("r", as: Int.self) > 0, "the 429s of the storm are audited with the records they delayed")
        }
    }
}
