import Crypto
import Foundation
import Planning
import Postgres
import Store
import TestSupport
import Testing

@Suite("Erasure: one person replaced by a keyed pseudonym everywhere in an account", .timeLimit(.minutes(2)))
struct ErasureTests {
    static let key = SymmetricKey(data: Data(repeating: 7, count: 32))

    @Test("the pseudonym is stable across formats and keys it, and differs per account and per key")
    func pseudonyms() throws {
        let store = try ErasureStore(key: Self.key)
        let account = UUID()
        let one = store.pseudonym(clientAccountID: account, phone: "+49 151 0000 0001")
        #expect(one == store.pseudonym(clientAccountID: account, phone: "4915100000001"))
        #expect(one.hasPrefix("erased-") && one.count == 31)
        #expect(one != store.pseudonym(clientAccountID: UUID(), phone: "4915100000001"))
        #expect(one != (try ErasureStore(key: SymmetricKey(data: Data(repeating: 8, count: 32)))).pseudonym(clientAccountID: account, phone: "4915100000001"))
        #expect(throws: StoreError.self) { try ErasureStore(key: SymmetricKey(data: Data(repeating: 1, count: 16))) }
    }

    @Test("erase replaces the phone in the audit trail, the queue and the campaign tables, cancels what waited, and touches no one else")
    func erase() async throws {
        try await withMigratedDatabase { connection in
            let client = UUID()
            let label = UUID()
            try await CampaignSeed.label(client: client, label: label, on: connection)
            let start: Int64 = 1_796_083_200_000 + 3_600_000
            var seed = CampaignSeed(client: client, label: label, startsAt: start, endsAt: start + 3_600_000)
            seed.receivers = 3
            let campaign = try await seed.insert(on: connection)
            try await connection.execute(
                "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) VALUES ($1, '4930000009', '4915100000001')", campaign)
            let deliveries = DeliveryStore(instance: "erase-test", transport: .v1)
            _ = try await deliveries.ensureAuditPartitions(now: start, monthsAhead: 1, on: connection)
            _ = try await deliveries.syncWindows(campaignID: campaign, clientAccountID: client, windows: [
                PlannedWindow(startsAt: start, endsAt: start + 3_600_000, deadline: start - 300_000, pushAt: start - 600_000),
            ], now: start - 7_200_000, on: connection)
            let window: Int64 = try await connection.query("SELECT id FROM callwindow.windows WHERE campaign_id = $1", campaign)[0].decode("id")
            #expect(try await deliveries.materialize(windowID: window, now: start - 7_200_000, on: connection) == 4)
            // Receiver 1 was pushed once (an audit row), and waits in the pair's record.
            let claimed = try await deliveries.claim(clientAccountID: client, owner: "t", now: start - 600_000, limit: 1, leaseMs: 60_000, on: connection)
            let attempt = DeliveryResult.Attempt(at: start - 600_000, tokenFingerprint: "abcdef012345", httpStatus: 200, latencyMs: 3, outcome: .accepted)
            _ = try await deliveries.record(claimed.map { DeliveryResult(delivery: $0, next: .accepted, outcome: .accepted, attempts: [attempt]) },
                                            owner: "t", now: start - 600_000, on: connection)
            let erased = try #require(claimed.first?.receiver)
            let store = try ErasureStore(key: Self.key)
            let pseudonym = store.pseudonym(clientAccountID: client, phone: erased)

            let report = try await store.erase(clientAccountID: client, phone: erased, now: start - 500_000, instance: "erase-test", on: connection)
            let counts = Dictionary(uniqueKeysWithValues: report.map { ($0.relation, $0.changed) })
            #expect(counts["campaign_receivers"] == 1)
            #expect(counts["campaign_pairs"] == (erased == "4915100000001" ? 1 : 0))
            #expect(counts["push_attempts"] ?? 0 >= 1)
            let leftovers = try await connection.query(
                """
                SELECT (SELECT count(*) FROM callwindow.push_attempts WHERE client_account_id = $1 AND (caller = $2 OR receiver = $2))
                     + (SELECT count(*) FROM callwindow.deliveries WHERE client_account_id = $1 AND (caller = $2 OR receiver = $2))
                     + (SELECT count(*) FROM callwindow.campaign_receivers WHERE campaign_id = $3 AND phone = $2)
                     + (SELECT count(*) FROM callwindow.campaign_pairs WHERE campaign_id = $3 AND (caller = $2 OR receiver = $2)) AS n
                """, client, erased, campaign)[0].decode("n", as: Int.self)
            #expect(leftovers == 0, "no row of the account holds the number any more")
            let pseudonymous = try await connection.query(
                "SELECT count(*) AS n FROM callwindow.push_attempts WHERE client_account_id = $1 AND receiver = $2", client, pseudonym)[0]
                .decode("n", as: Int.self)
            #expect(pseudonymous >= 1, "the person's rows still match each other")
            // Nobody else was touched: the other records still wait, unchanged. Which record the
            // claim took is up to the database (equal deadlines and priorities): the pair's
            // receiver has two records, the others one each.
            let others = try await connection.query(
                "SELECT count(*) AS n FROM callwindow.deliveries WHERE campaign_id = $1 AND state = 'pending' AND receiver NOT LIKE 'erased-%'", campaign)[0]
                .decode("n", as: Int.self)
            #expect(others == (erased == "4915100000001" ? 2 : 3), "erased \(erased)")
            // Materialising again does not bring the person back.
            #expect(try await deliveries.materialize(windowID: window, now: start - 400_000, on: connection) == 0)
            // Outside the function the audit trail is still append-only.
            let refused = await #expect(throws: PostgresError.self) {
                try await connection.execute("UPDATE callwindow.push_attempts SET receiver = 'x' WHERE client_account_id = $1", client)
            }
            #expect(refused?.sqlState == "42501")
            // Erasing again changes nothing.
            let again = try await store.erase(clientAccountID: client, phone: erased, now: start - 300_000, instance: "erase-test", on: connection)
            #expect(again.allSatisfy { $0.changed == 0 })
        }
    }

    @Test("erase refuses while a record of the phone is in flight, and says to try again")
    func refusesInFlight() async throws {
        try await withMigratedDatabase { connection in
            let client = UUID()
            let label = UUID()
            try await CampaignSeed.label(client: client, label: label, on: connection)
            let start: Int64 = 1_796_083_200_000 + 3_600_000
            let campaign = try await CampaignSeed(client: client, label: label, startsAt: start, endsAt: start + 3_600_000).insert(on: connection)
            let deliveries = DeliveryStore(instance: "erase-test", transport: .v1)
            _ = try await deliveries.syncWindows(campaignID: campaign, clientAccountID: client, windows: [
                PlannedWindow(startsAt: start, endsAt: start + 3_600_000, deadline: start - 300_000, pushAt: start - 600_000),
            ], now: start - 7_200_000, on: connection)
            let window: Int64 = try await connection.query("SELECT id FROM callwindow.windows WHERE campaign_id = $1", campaign)[0].decode("id")
            try await deliveries.materialize(windowID: window, now: start - 7_200_000, on: connection)
            let claimed = try await deliveries.claim(clientAccountID: client, owner: "t", now: start - 600_000, limit: 1, leaseMs: 60_000, on: connection)
            let store = try ErasureStore(key: Self.key)
            let error = await #expect(throws: StoreError.self) {
                _ = try await store.erase(clientAccountID: client, phone: claimed[0].receiver, now: start - 500_000, instance: "t", on: connection)
            }
            #expect(error?.code == .inUse)
            #expect(error?.description.contains("try again in a minute") == true)
        }
    }
}
