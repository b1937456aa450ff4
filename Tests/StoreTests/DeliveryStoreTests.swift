import Planning
import Foundation
import Postgres
import Store
import TestSupport
import Testing

/// 2026-12-01T00:00:00Z in epoch ms.
let december: Int64 = 1_796_083_200_000
let hour: Int64 = 3_600_000

/// A campaign with 2 callers × 3 receivers, one pair overriding a cross-product record's
/// call reason and one extra pair, and two planned one-hour windows.
struct QueueFixture {
    var fixture: Fixture
    var windows: [PlannedWindow]
    var store: DeliveryStore

    static func make(_ connection: PostgresConnection) async throws -> QueueFixture {
        let fixture = try await Fixture.make(connection)
        let id = fixture.campaign
        try await connection.execute("UPDATE callwindow.campaigns SET call_reason = 'Your parcel arrives today' WHERE id = $1", id)
        try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930000001'), ($1, '4930000002')", id)
        try await connection.execute(
            "INSERT INTO callwindow.campaign_receivers (campaign_id, phone, call_reason) VALUES ($1, '4915100000001', NULL), ($1, '4915100000002', 'Receiver specific reason'), ($1, '4915100000003', NULL)", id)
        try await connection.execute(
            "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver, call_reason) VALUES ($1, '4930000001', '4915100000002', 'Pair specific reason'), ($1, '4930000009', '4915100000001', NULL)", id)
        let windows = [
            PlannedWindow(startsAt: december + 2 * hour, endsAt: december + 3 * hour, deadline: december + 2 * hour - 300_000, pushAt: december + hour),
            PlannedWindow(startsAt: december + 26 * hour, endsAt: december + 27 * hour, deadline: december + 26 * hour - 300_000, pushAt: december + 25 * hour),
        ]
        let store = DeliveryStore(instance: "test-\(UUID().uuidString.prefix(6))", transport: .v1)
        _ = try await store.ensureAuditPartitions(now: december, on: connection)
        let sync = try await store.syncWindows(campaignID: id, clientAccountID: fixture.client, windows: windows, now: december, on: connection)
        #expect(sync.upserted == 2)
        return QueueFixture(fixture: fixture, windows: windows, store: store)
    }

    func windowIDs(_ connection: PostgresConnection) async throws -> [Int64] {
        try await connection.query("SELECT id FROM callwindow.windows WHERE campaign_id = $1 ORDER BY starts_at", fixture.campaign).map { try $0.decode("id") }
    }
}

@Suite("The delivery queue against a real database", .timeLimit(.minutes(3)))
struct DeliveryStoreTests {
    @Test("materialise: caller × receiver plus pairs, texts resolved pair → receiver → campaign, idempotent")
    func materialise() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let queue = try await QueueFixture.make(connection)
            let window = try await queue.windowIDs(connection)[0]
            #expect(try await queue.store.materialize(windowID: window, now: december, on: connection) == 7)
            #expect(try await queue.store.materialize(windowID: window, now: december, on: connection) == 0)
            let reasons = try await connection.query(
                "SELECT caller, receiver, call_reason FROM callwindow.deliveries WHERE window_id = $1 ORDER BY caller, receiver", window)
                .map { "\(try $0.decode("caller", as: String.self))>\(try $0.decode("receiver", as: String.self)): \(try $0.decode("call_reason", as: String.self))" }
            #expect(reasons == [
                "4930000001>4915100000001: Your parcel arrives today",
                "4930000001>4915100000002: Pair specific reason",
                "4930000001>4915100000003: Your parcel arrives today",
                "4930000002>4915100000001: Your parcel arrives today",
                "4930000002>4915100000002: Receiver specific reason",
                "4930000002>4915100000003: Your parcel arrives today",
                "4930000009>4915100000001: Your parcel arrives today",
            ])
            // A receiver added later is picked up by materialising again.
            try await connection.execute("INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '4915100000004')", queue.fixture.campaign)
            #expect(try await queue.store.materialize(windowID: window, now: december, on: connection) == 2)
            let records = try await connection.query("SELECT records, state FROM callwindow.windows WHERE id = $1", window)[0]
            #expect(try records.decode("records", as: Int.self) == 9)
            #expect(try records.decode("state", as: String.self) == "materialized")
        }
    }

    @Test("claim, record with fencing, retry, rescue, expire, audit and progress views")
    func lifecycle() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let queue = try await QueueFixture.make(connection)
            let store = queue.store
            let window = try await queue.windowIDs(connection)[0]
            try await store.materialize(windowID: window, now: december, on: connection)

            // Nothing is due before the push time.
            #expect(try await store.claim(clientAccountID: queue.fixture.client, owner: "a", now: december + hour - 1, limit: 10, leaseMs: 30_000, on: connection).isEmpty)
            let pushTime = december + hour
            let claimed = try await store.claim(clientAccountID: queue.fixture.client, owner: "a", now: pushTime, limit: 4, leaseMs: 30_000, on: connection)
            #expect(claimed.count == 4)
            let attempt = DeliveryResult.Attempt(at: pushTime + 5, tokenFingerprint: "abcdef012345", httpStatus: 200, latencyMs: 5, outcome: .accepted)
            let results = [
                DeliveryResult(delivery: claimed[0], next: .accepted, outcome: .accepted, attempts: [attempt]),
                DeliveryResult(delivery: claimed[1], next: .accepted, outcome: .accepted, attempts: [attempt]),
                DeliveryResult(delivery: claimed[2], next: .retry, outcome: .released, reason: "HTTP 503", retryAt: pushTime + 1_000,
                               attempts: [.init(at: pushTime + 5, tokenFingerprint: "abcdef012345", httpStatus: 503, latencyMs: 3, outcome: .transient, reason: "HTTP 503")]),
                DeliveryResult(delivery: claimed[3], next: .rejected, outcome: .rejected, reason: "Not a Truecaller user",
                               attempts: [.init(at: pushTime + 5, tokenFingerprint: "abcdef012345", httpStatus: 400, latencyMs: 4, outcome: .rejected, reason: "Not a Truecaller user")]),
            ]
            #expect(try await store.record(results, owner: "a", now: pushTime + 10, on: connection) == 4)
            // A stale writer (wrong owner) changes nothing, but its attempt is still audited.
            #expect(try await store.record([results[0]], owner: "b", now: pushTime + 11, on: connection) == 0)

            // The retried one comes back only at its retry time.
            let again = try await store.claim(clientAccountID: queue.fixture.client, owner: "a", now: pushTime + 500, limit: 10, leaseMs: 30_000, on: connection)
            #expect(again.count == 3)
            #expect(!again.contains { $0.id == claimed[2].id })
            let retried = try await store.claim(clientAccountID: queue.fixture.client, owner: "b", now: pushTime + 1_000, limit: 10, leaseMs: 30_000, on: connection)
            #expect(retried.map(\.id) == [claimed[2].id])
            #expect(retried[0].attempts == 2)

            // Owner "a" crashes: after its lease expires, the rescuer returns the work to the queue.
            #expect(try await store.rescue(clientAccountID: queue.fixture.client, now: pushTime + 30_000, on: connection) == 0)
            #expect(try await store.rescue(clientAccountID: queue.fixture.client, now: pushTime + 30_501, on: connection) == 3)
            // A late result from the crashed owner is fenced out.
            let late = DeliveryResult(delivery: again[0], next: .accepted, outcome: .accepted, attempts: [attempt])
            #expect(try await store.record([late], owner: "a", now: pushTime + 30_600, on: connection) == 0)

            // The window ends: what is still pending expires with an audit row.
            let windowEnd = december + 3 * hour
            #expect(try await store.expire(clientAccountID: queue.fixture.client, now: windowEnd, on: connection) == 3)
            let progress = try await connection.query(
                "SELECT accepted, rejected, expired, pending, in_flight, records FROM callwindow.window_progress WHERE window_id = $1", window)[0]
            #expect(try progress.decode("accepted", as: Int.self) == 2)
            #expect(try progress.decode("rejected", as: Int.self) == 1)
            #expect(try progress.decode("expired", as: Int.self) == 3)
            #expect(try progress.decode("in_flight", as: Int.self) == 1)  // owner "b" still holds the retried one
            let audit = try await connection.query(
                "SELECT outcome, count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 GROUP BY outcome ORDER BY outcome", queue.fixture.campaign)
                .map { "\(try $0.decode("outcome", as: String.self))=\(try $0.decode("n", as: Int.self))" }
            // The record put back after its 503 has its attempt and a row saying it went back.
            #expect(audit == ["accepted=4", "expired=3", "rejected=1", "released=1", "transient=1"])
            let campaign = try await connection.query("SELECT accepted, expired FROM callwindow.campaign_progress WHERE campaign_id = $1", queue.fixture.campaign)[0]
            #expect(try campaign.decode("accepted", as: Int.self) == 2)

            // Final deliveries leave the queue once their window ended; the audit keeps them.
            #expect(try await store.cleanUp(clientAccountID: queue.fixture.client, now: windowEnd, on: connection) == 6)
        }
    }

    @Test("the audit trail is append-only")
    func appendOnly() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let queue = try await QueueFixture.make(connection)
            let window = try await queue.windowIDs(connection)[0]
            try await queue.store.materialize(windowID: window, now: december, on: connection)
            #expect(try await queue.store.cancelCampaign(campaignID: queue.fixture.campaign, now: december + 1, on: connection) == 7)
            for statement in [
                "UPDATE callwindow.push_attempts SET outcome = 'accepted' WHERE campaign_id = $1",
                "DELETE FROM callwindow.push_attempts WHERE campaign_id = $1",
            ] {
                let error = await #expect(throws: PostgresError.self) { try await connection.execute(statement, queue.fixture.campaign) }
                #expect(error?.message.contains("append-only") == true)
            }
            let error = await #expect(throws: PostgresError.self) { try await connection.execute("TRUNCATE callwindow.push_attempts") }
            #expect(error?.message.contains("append-only") == true)
            let rows = try await connection.query("SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'cancelled'", queue.fixture.campaign)
            #expect(try rows[0].decode("n", as: Int.self) == 7)
        }
    }

    @Test("two claimers at once never get the same delivery")
    func concurrentClaims() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let queue = try await QueueFixture.make(connection)
            let window = try await queue.windowIDs(connection)[0]
            try await connection.execute(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4916000000000 + g)::text FROM generate_series(1, 500) g", queue.fixture.campaign)
            try await queue.store.materialize(windowID: window, now: december, on: connection)
            let client = queue.fixture.client
            let store = queue.store
            let claims = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for owner in ["x", "y", "z"] {
                    group.addTask {
                        let own = try await TestDatabase.connect()
                        var ids: [Int64] = []
                        while true {
                            let batch = try await store.claim(clientAccountID: client, owner: owner, now: december + hour, limit: 37, leaseMs: 60_000, on: own)
                            if batch.isEmpty { break }
                            ids += batch.map(\.id)
                        }
                        await own.close()
                        return ids
                    }
                }
                return try await group.reduce(into: [Int64]()) { $0 += $1 }
            }
            #expect(claims.count == 2 * 503 + 1)
            #expect(Set(claims).count == claims.count)
        }
    }

    /// A queue of 20,007 deliveries of one account (one window), and a way to read how
    /// `callwindow.deliveries` was read so far: sequential scans, the rows they read, and the
    /// rows fetched through indexes. The counts are per database, so these tests run on a
    /// database of their own (`withMigratedDatabase(fresh:)`): other tests' statements would be
    /// counted too.
    struct ReadCounts {
        var scans: Int, rows: Int, fetched: Int
    }

    static func largeQueue(_ connection: PostgresConnection) async throws -> QueueFixture {
        let queue = try await QueueFixture.make(connection)
        let window = try await queue.windowIDs(connection)[0]
        try await connection.execute(
            "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4916000000000 + g)::text FROM generate_series(1, 10000) g",
            queue.fixture.campaign)
        #expect(try await queue.store.materialize(windowID: window, now: december, on: connection) == 2 * 10003 + 1)
        return queue
    }

    static func reads(_ connection: PostgresConnection) async throws -> ReadCounts {
        // Statistics are sent when the backend goes idle, at most once a second unless forced.
        try await connection.execute("SELECT pg_stat_force_next_flush()")
        let row = try await connection.query(
            """
            SELECT coalesce(seq_scan, 0) AS scans, coalesce(seq_tup_read, 0) AS rows, coalesce(idx_tup_fetch, 0) AS fetched
            FROM pg_stat_user_tables WHERE schemaname = 'callwindow' AND relname = 'deliveries'
            """)[0]
        return ReadCounts(scans: try row.decode("scans"), rows: try row.decode("rows"), fetched: try row.decode("fetched"))
    }

    /// The planner plans the queue's statements on statistics that are always stale. In a
    /// 20,000-record push it read the whole queue for each claim and each admission check, with
    /// a sequential scan hashed against the batch's ids (40 rows read per record pushed).
    @Test("claim, admission check and result write find their rows by index: none reads the queue sequentially",
          arguments: [false, true])
    func claimAndRecordUseIndexes(analyzed: Bool) async throws {
        try await withMigratedDatabase(fresh: "reads") { connection throws in
            let queue = try await Self.largeQueue(connection)
            let (store, client) = (queue.store, queue.fixture.client)
            // Without statistics the planner estimates from the table's size; with them it believes
            // every row pending. The queue is in either state when a push starts.
            if analyzed { try await connection.execute("ANALYZE callwindow.deliveries") }
            // In a 20,000-record push the planner chose sequential scans, believing the queue small.
            // At a test's size it does not, unless index reads are priced far above their cost.
            try await connection.execute("SET random_page_cost = 1000")
            let before = try await Self.reads(connection)
            let claimed = try await store.claim(clientAccountID: client, owner: "x", now: december + hour, limit: 500, leaseMs: 60_000, on: connection)
            #expect(claimed.count == 500)
            let afterClaim = try await Self.reads(connection)
            #expect(afterClaim.scans == before.scans, "the claim read \(afterClaim.rows - before.rows) rows of the queue sequentially")
            let withdrawn = try await store.withdrawals(claimed: claimed.map { ($0.id, $0.leaseToken) }, owner: "x", on: connection)
            #expect(withdrawn.isEmpty)
            let afterCheck = try await Self.reads(connection)
            #expect(afterCheck.scans == afterClaim.scans, "the admission check read \(afterCheck.rows - afterClaim.rows) rows of the queue sequentially")
            let results = claimed.map { DeliveryResult(delivery: $0, next: .accepted, outcome: .accepted) }
            #expect(try await store.record(results, owner: "x", now: december + hour, on: connection) == 500)
            let afterRecord = try await Self.reads(connection)
            #expect(afterRecord.scans == afterCheck.scans, "the result write read \(afterRecord.rows - afterCheck.rows) rows of the queue sequentially")
        }
    }

    /// As `EXISTS`, the campaign check let the planner drive the claim from the campaign: every
    /// pending row of the campaign was read and sorted for each claim.
    @Test("a claim reads the queue in claim order and stops at its limit", arguments: [false, true])
    func claimReadsOnlyWhatItClaims(analyzed: Bool) async throws {
        try await withMigratedDatabase(fresh: "reads") { connection throws in
            let queue = try await Self.largeQueue(connection)
            if analyzed { try await connection.execute("ANALYZE callwindow.deliveries") }
            for round in 1...3 {
                let before = try await Self.reads(connection)
                let claimed = try await queue.store.claim(clientAccountID: queue.fixture.client, owner: "x", now: december + hour, limit: 100,
                                                          leaseMs: 60_000, on: connection)
                #expect(claimed.count == 100)
                let after = try await Self.reads(connection)
                // The claim index's 100 rows and the same 100 by primary key to update them, plus the
                // index entries earlier rounds claimed (gone only once vacuum has run): a few hundred,
                // where a claim that reads the whole queue fetches 20,007 rows or more.
                #expect(after.fetched - before.fetched <= 2_000, "claim \(round) fetched \(after.fetched - before.fetched) rows to claim 100")
                #expect(after.scans == before.scans)
            }
        }
    }

    /// `claimable` is spelled twice: per row for the claim, as joins for `nextDue`.
    @Test("the claim and the earliest due instant agree on what may be claimed: a paused campaign, a listed receiver")
    func nextDueAgreesWithTheClaim() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let queue = try await QueueFixture.make(connection)
            let (store, client, campaign) = (queue.store, queue.fixture.client, queue.fixture.campaign)
            #expect(try await store.materialize(windowID: try await queue.windowIDs(connection)[0], now: december, on: connection) == 7)
            let pushAt = queue.windows[0].pushAt
            #expect(try await store.nextDue(clientAccountID: client, on: connection) == pushAt)

            try await connection.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", campaign)
            #expect(try await store.nextDue(clientAccountID: client, on: connection) == nil)
            #expect(try await store.claim(clientAccountID: client, owner: "x", now: pushAt, limit: 100, leaseMs: 60_000, on: connection).isEmpty)

            try await connection.execute("UPDATE callwindow.campaigns SET status = 'active' WHERE id = $1", campaign)
            try await connection.execute("INSERT INTO callwindow.do_not_contact (client_account_id, phone) VALUES ($1, '4915100000002')", client)
            let claimed = try await store.claim(clientAccountID: client, owner: "x", now: pushAt, limit: 100, leaseMs: 60_000, on: connection)
            #expect(claimed.count == 5)
            #expect(!claimed.contains { $0.receiver == "4915100000002" })
            // The two records to the listed receiver are still pending, and not claimable.
            #expect(try await store.nextDue(clientAccountID: client, on: connection) == nil)
        }
    }

    @Test("re-planning without a materialised window cancels its pending deliveries; planned ones are removed")
    func replan() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let queue = try await QueueFixture.make(connection)
            let ids = try await queue.windowIDs(connection)
            try await queue.store.materialize(windowID: ids[0], now: december, on: connection)
            let moved = PlannedWindow(startsAt: december + 50 * hour, endsAt: december + 51 * hour, deadline: december + 50 * hour, pushAt: december + 49 * hour)
            let sync = try await queue.store.syncWindows(campaignID: queue.fixture.campaign, clientAccountID: queue.fixture.client,
                                                         windows: [moved], now: december + 10, on: connection)
            #expect(sync == DeliveryStore.WindowSync(upserted: 1, removed: 1, cancelled: 7))
            let states = try await connection.query("SELECT state FROM callwindow.windows WHERE campaign_id = $1 ORDER BY starts_at", queue.fixture.campaign)
                .map { try $0.decode("state", as: String.self) }
            #expect(states == ["cancelled", "planned"])
        }
    }
}
