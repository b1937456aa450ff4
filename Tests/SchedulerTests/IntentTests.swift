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

@Suite("What the SQL says is what gets pushed: the rules")
struct WithdrawalRuleTests {
    @Test("the strictest reason wins: suppressed, deleted, removed, cancelled end a record; paused or a bad label hold it")
    func rules() {
        #expect(Withdrawal.decide(status: .active, labelDynamic: true, removed: false, suppressed: false) == nil)
        #expect(Withdrawal.decide(status: .active, labelDynamic: true, removed: true, suppressed: true)
                == .suppress(reason: "the receiver is on the do-not-contact list"))
        #expect(Withdrawal.decide(status: nil, labelDynamic: nil, removed: false, suppressed: false) == .cancel(reason: "the campaign was deleted"))
        #expect(Withdrawal.decide(status: .paused, labelDynamic: true, removed: true, suppressed: false)
                == .cancel(reason: "the record was removed from the campaign"))
        #expect(Withdrawal.decide(status: .cancelled, labelDynamic: false, removed: false, suppressed: false) == .cancel(reason: "the campaign was cancelled"))
        #expect(Withdrawal.decide(status: .paused, labelDynamic: false, removed: false, suppressed: false) == .hold(reason: "the campaign is paused"))
        #expect(Withdrawal.decide(status: .active, labelDynamic: false, removed: false, suppressed: false) == .hold(reason: "the campaign's label is static"))
        #expect(Withdrawal.decide(status: .active, labelDynamic: nil, removed: false, suppressed: false)
                == .hold(reason: "the campaign's label is not known for the account"))
        #expect(Withdrawal.decide(status: .active, labelDynamic: true, removed: true, suppressed: true, leaseHeld: false)
                == .hold(reason: "the claim lease was lost: another instance holds the record"), "another instance owns it now")
    }
}

@Suite("What the SQL says is what gets pushed: schema and store", .timeLimit(.minutes(2)))
struct IntentStoreTests {
    @Test("a cancelled campaign cannot be re-activated or paused: the UPDATE is refused with the rule; pausing stays reversible")
    func cancelIsFinal() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 1)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", campaign)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'active' WHERE id = $1", campaign)
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'cancelled' WHERE id = $1", campaign)
            for status in ["active", "paused"] {
                let error = await #expect(throws: PostgresError.self) {
                    try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = $2 WHERE id = $1", campaign, status)
                }
                #expect(error?.sqlState == "23514")
                #expect(error?.constraint == "campaigns_cancel_final")
                #expect(error?.debugDescription.contains("cancelling is final") == true, "\(error?.debugDescription ?? "")")
            }
            // Other columns of a cancelled campaign may still change (a rename, a note in the name).
            try await fixture.connection.execute("UPDATE callwindow.campaigns SET name = 'old' WHERE id = $1", campaign)
        }
    }

    @Test("the admission check withdraws records of a paused or cancelled campaign, removed receivers and listed phones, in one query")
    func admission() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 4)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            let store = fixture.planner.deliveries
            let claimed = try await store.claim(clientAccountID: fixture.client, owner: "t", now: december + 9 * hour - 10 * minute,
                                                limit: 100, leaseMs: 60_000, on: fixture.connection)
            #expect(claimed.count == 8, "2 callers × 4 receivers")
            let held = claimed.map { (id: $0.id, leaseToken: $0.leaseToken) }
            #expect(try await store.withdrawals(claimed: held, owner: "t", on: fixture.connection).isEmpty)
            let byReceiver = { (phone: String) in Set(claimed.filter { $0.receiver == phone }.map(\.id)) }

            // A listed phone (written with punctuation: stored normalised) and a removed receiver.
            try await fixture.connection.execute(
                "INSERT INTO callwindow.do_not_contact (client_account_id, phone, reason) VALUES ($1, '+49 151 0000 0001', 'asked by phone')", fixture.client)
            try await fixture.connection.execute("DELETE FROM callwindow.campaign_receivers WHERE campaign_id = $1 AND phone = '4915100000002'", campaign)
            var withdrawn = try await store.withdrawals(claimed: held, owner: "t", on: fixture.connection)
            #expect(Set(withdrawn.filter { $0.value == .suppress(reason: "the receiver is on the do-not-contact list") }.keys) == byReceiver("4915100000001"))
            #expect(Set(withdrawn.filter { $0.value == .cancel(reason: "the record was removed from the campaign") }.keys) == byReceiver("4915100000002"))
            #expect(withdrawn.count == 4)

            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", campaign)
            withdrawn = try await store.withdrawals(claimed: held, owner: "t", on: fixture.connection)
            #expect(Set(withdrawn.filter { $0.value == .hold(reason: "the campaign is paused") }.keys) == byReceiver("4915100000003").union(byReceiver("4915100000004")))

            try await fixture.connection.execute("UPDATE callwindow.campaigns SET status = 'cancelled' WHERE id = $1", campaign)
            withdrawn = try await store.withdrawals(claimed: held, owner: "t", on: fixture.connection)
            #expect(withdrawn.values.filter { $0 == .cancel(reason: "the campaign was cancelled") }.count == 4)
            #expect(withdrawn.count == 8)

            try await fixture.connection.execute("DELETE FROM callwindow.campaigns WHERE id = $1", campaign)
            withdrawn = try await store.withdrawals(claimed: held, owner: "t", on: fixture.connection)
            #expect(withdrawn.count == 8 && withdrawn.values.allSatisfy { $0 == .cancel(reason: "the campaign was deleted") })
        }
    }

    @Test("a claim lease lost to another instance withdraws the records from the instance that lost it, not from the new holder")
    func leaseLost() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            _ = try await fixture.campaign(receivers: 2)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            let store = fixture.planner.deliveries
            let at = december + 9 * hour - 10 * minute
            // Instance a claims with a 1 s lease and stalls; the rescuer hands the records to b.
            let first = try await store.claim(clientAccountID: fixture.client, owner: "a", now: at, limit: 100, leaseMs: 1_000, on: fixture.connection)
            #expect(first.count == 4)
            #expect(try await store.rescue(clientAccountID: fixture.client, now: at + 2_000, on: fixture.connection) == 4)
            let second = try await store.claim(clientAccountID: fixture.client, owner: "b", now: at + 2_000, limit: 100, leaseMs: 60_000, on: fixture.connection)
            #expect(second.count == 4)
            let lost = try await store.withdrawals(claimed: first.map { ($0.id, $0.leaseToken) }, owner: "a", on: fixture.connection)
            #expect(lost.count == 4 && lost.values.allSatisfy { $0 == .hold(reason: "the claim lease was lost: another instance holds the record") })
            #expect(try await store.withdrawals(claimed: second.map { ($0.id, $0.leaseToken) }, owner: "b", on: fixture.connection).isEmpty)
            // a's renewal finds nothing to renew.
            #expect(try await store.renewLeases(ids: first.map(\.id), owner: "a", now: at + 2_500, leaseMs: 1_000, on: fixture.connection) == 0)
        }
    }

    @Test("an API message with a NUL, control characters or 5,000 characters is stored cleaned, not retried forever")
    func storableReasons() async throws {
        #expect(DeliveryStore.storable("bad\u{0}byte\nnext\tline") == "badbyte next line")
        #expect(DeliveryStore.storable(nil) == nil)
        #expect(DeliveryStore.storable(String(repeating: "x", count: 5_000))?.count == DeliveryStore.maxReasonCharacters)
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 1)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            let store = fixture.planner.deliveries
            let claimed = try await store.claim(clientAccountID: fixture.client, owner: "t", now: december + 9 * hour - 10 * minute,
                                                limit: 100, leaseMs: 60_000, on: fixture.connection)
            let message = "Not a Truecaller user\u{0}" + String(repeating: "!", count: 5_000)
            let attempt = DeliveryResult.Attempt(at: december + 9 * hour - 10 * minute, tokenFingerprint: "abcdef012345", httpStatus: 400,
                                                 latencyMs: 3, outcome: .rejected, reason: message)
            let results = claimed.map { DeliveryResult(delivery: $0, next: .rejected, outcome: .rejected, reason: message, attempts: [attempt]) }
            #expect(try await store.record(results, owner: "t", now: december + 9 * hour - 10 * minute, on: fixture.connection) == 2)
            let stored = try await fixture.connection.query(
                "SELECT reason FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'rejected'", campaign).map { try $0.decode("reason", as: String.self) }
            #expect(stored.count == 2)
            #expect(stored.allSatisfy { $0.hasPrefix("Not a Truecaller user!!!") && $0.count == DeliveryStore.maxReasonCharacters })
        }
    }

    @Test("a listed phone is never claimed: its records end suppressed at materialisation, audited and counted")
    func doNotContactAtMaterialisation() async throws {
        try await closing(try await PlannerFixture.make(), connection: { $0.connection }) { fixture throws in
            let campaign = try await fixture.campaign(receivers: 3)
            try await fixture.connection.execute(
                "INSERT INTO callwindow.do_not_contact (client_account_id, phone) VALUES ($1, '4915100000003')", fixture.client)
            let cycle = try await fixture.planner.cycle(clientAccountID: fixture.client, now: december + 8 * hour, on: fixture.connection)
            #expect(cycle.recordsCreated == 6)
            #expect(cycle.recordsSuppressed == 2)
            let claimed = try await fixture.planner.deliveries.claim(clientAccountID: fixture.client, owner: "t", now: december + 9 * hour,
                                                                      limit: 100, leaseMs: 60_000, on: fixture.connection)
            #expect(claimed.count == 4)
            #expect(!claimed.contains { $0.receiver == "4915100000003" })
            let progress = try await fixture.connection.query(
                "SELECT records, suppressed, in_flight FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
            #expect(try progress.decode("suppressed", as: Int.self) == 2)
            #expect(try progress.decode("in_flight", as: Int.self) == 4)
            let audit = try await fixture.connection.query(
                "SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'suppressed' AND receiver = '4915100000003'",
                campaign)[0].decode("n", as: Int.self)
            #expect(audit == 2)
            // A bad phone on the list is refused with the rule, like a receiver's.
            let error = await #expect(throws: PostgresError.self) {
                try await fixture.connection.execute("INSERT INTO callwindow.do_not_contact (client_account_id, phone) VALUES ($1, '12')", fixture.client)
            }
            #expect(error?.constraint == "do_not_contact_phone_valid")
        }
    }
}

@Suite("What the SQL says is what gets pushed: during an API outage", .timeLimit(.minutes(3)))
struct IntentDispatchTests {
    @Test("records waiting to retry through a 429 storm are never pushed once paused, cancelled, removed or listed; the rest are")
    func changesDuringAnOutage() async throws {
        let clock = SystemClock()
        try await closing(try await PlannerFixture.make(tokens: 1), connection: { $0.connection }) { fixture throws in
            let account = SandboxAccount(client: fixture.client, label: fixture.label)
            let starts = clock.now() + 32_000
            func campaign(_ name: String, receivers: Int) async throws -> Int64 {
                var seed = CampaignSeed(client: fixture.client, label: fixture.label, startsAt: starts, endsAt: starts + 3_600_000)
                seed.name = name
                seed.lead = "30 seconds"
                seed.receivers = receivers
                return try await seed.insert(on: fixture.connection)
            }
            let paused = try await campaign("paused", receivers: 10)
            let cancelled = try await campaign("cancelled", receivers: 10)
            let changed = try await campaign("changed", receivers: 10)
            _ = try await fixture.planner.cycle(clientAccountID: fixture.client, now: clock.now(), on: fixture.connection)

            try await withAccountSandbox(account, clock: clock) { sandbox, port in
                // The API refuses every push until the changes below are made: every record is in
                // retry back-off, in memory. (Ended by the test, not by a real-time limit.)
                sandbox.startStorm(milliseconds: 120_000)
                try await closing(try await TestDatabase.pool(maxConnections: 4)) { database throws in
                    try await APIClient.withClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 2_000, requestTimeoutMs: 3_000)) { api in
                        let cipher = try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
                        let tokens = try TokenPool(
                            configuration: .init(clientAccountID: fixture.client, key: account.key, transport: .v1, instance: "intent-test"),
                            options: TokenPoolOptions(maxTokens: 1, retryBaseMs: 200, retryMaxMs: 1_000),
                            ledger: TokenStore(pool: database, cipher: cipher), api: api, clock: clock)
                        let dispatcher = Dispatcher(clientAccountID: fixture.client, database: database, tokens: tokens,
                                                    store: fixture.planner.deliveries, owner: "intent-test",
                                                    options: DispatcherOptions(claimBatch: 100), clock: clock, logger: Logger(label: "test"))
                        try await withServices([dispatcher], logger: Logger(label: "test")) {
                            try await waitUntil(timeout: .seconds(60), "all 30 records refused once by the storm") { sandbox.stats().stormRefusals >= 30 }
                            // While they wait to retry: pause one campaign, cancel one, and in the third
                            // delete a receiver; and list receiver 2 on the account's do-not-contact list,
                            // which every campaign honours (all three have that receiver).
                            // One transaction, so every admission check sees all four changes or none.
                            try await fixture.connection.transaction { connection in
                                try await connection.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", paused)
                                try await connection.execute("UPDATE callwindow.campaigns SET status = 'cancelled' WHERE id = $1", cancelled)
                                try await connection.execute(
                                    "DELETE FROM callwindow.campaign_receivers WHERE campaign_id = $1 AND phone = '4915100000001'", changed)
                                try await connection.execute(
                                    "INSERT INTO callwindow.do_not_contact (client_account_id, phone) VALUES ($1, '4915100000002')", fixture.client)
                            }
                            // The API comes back once no attempt can rest on a check older than the changes:
                            // after the checks' maximum age, and once every request decided before that has
                            // been answered (refused by the storm). Under load a request decided in time can
                            // reach the API hundreds of milliseconds later; waiting for it makes the outcome
                            // depend on no timing.
                            try await Task.sleep(for: .milliseconds(TokenPool.admissionMaxAgeMs + 200))
                            try await waitUntil(timeout: .seconds(30), "the requests decided before the checks aged answered") { tokens.inFlight == 0 }
                            sandbox.endStorm()
                            do {
                                try await waitUntil(timeout: .seconds(120), "every record settled after the storm") {
                                    let counts = dispatcher.counts
                                    return counts.accepted == 8 && counts.released == 9 && counts.cancelled == 10 && counts.suppressed == 3
                                }
                            } catch {
                                Issue.record("dispatcher counts \(dispatcher.counts), sandbox accepted \(sandbox.stats().accepted)")
                                throw error
                            }
                        }
                    }
                }
                #expect(sandbox.stats().accepted == 8, "only the eight records still wanted were pushed")
            }
            let states = try await fixture.connection.query(
                """
                SELECT campaign_id, state, count(*)::int8 AS n FROM callwindow.deliveries
                WHERE campaign_id = ANY($1) GROUP BY campaign_id, state ORDER BY campaign_id, state
                """, [paused, cancelled, changed]).map { (try $0.decode("campaign_id", as: Int64.self), try $0.decode("state", as: String.self), try $0.decode("n", as: Int.self)) }
            #expect(states.filter { $0.0 == paused }.map { "\($0.1) \($0.2)" } == ["pending 9", "suppressed 1"], "held: back in the queue unchanged")
            #expect(states.filter { $0.0 == cancelled }.map { "\($0.1) \($0.2)" } == ["cancelled 9", "suppressed 1"])
            #expect(states.filter { $0.0 == changed }.map { "\($0.1) \($0.2)" } == ["accepted 8", "cancelled 1", "suppressed 1"])
            // The trail ends with what became of each withdrawn record.
            let last = try await fixture.connection.query(
                """
                SELECT DISTINCT ON (delivery_id) campaign_id, outcome, reason FROM callwindow.push_attempts
                WHERE campaign_id = ANY($1) ORDER BY delivery_id, attempted_at DESC, outcome
                """, [paused, cancelled, changed]).map { (try $0.decode("campaign_id", as: Int64.self), try $0.decode("outcome", as: String.self), try $0.decode("reason", as: String?.self)) }
            #expect(last.filter { $0.0 == paused && $0.1 == "released" && $0.2 == "held: the campaign is paused" }.count == 9)
            #expect(last.filter { $0.0 == cancelled && $0.1 == "cancelled" && $0.2 == "the campaign was cancelled" }.count == 9)
            #expect(last.filter { $0.1 == "suppressed" && $0.2 == "the receiver is on the do-not-contact list" }.count == 3)
            #expect(last.count == 30, "every record's trail ends with its fate")
        }
    }
}
