import Planning
import Foundation
import Postgres
import Store
import TestSupport
import Testing

@Suite("callwindow status and audit (the real binary)", .timeLimit(.minutes(3)))
struct StatusAuditCommandTests {
    @Test("status shows progress; audit export writes every attempt as CSV; prune drops whole old months")
    func statusAndAudit() async throws {
        try await closing(try await previewFixture(), connection: { $0.0 }) { resource throws in
            let (connection, client, label) = resource
            let december: Int64 = 1_796_083_200_000
            let id: Int64 = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, call_reason)
                VALUES ($1, 'status, "quoted"', $2, '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z', 'Your parcel, today') RETURNING id
                """, client, label)[0].decode("id")
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930000001')", id)
            try await connection.execute("INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '4915100000001'), ($1, '4915100000002')", id)
            let store = DeliveryStore(instance: "cli-test", transport: .v1)
            try await store.ensureAuditPartitions(now: december, on: connection)
            _ = try await store.syncWindows(campaignID: id, clientAccountID: client, windows: [
                PlannedWindow(startsAt: december + 36_000_000, endsAt: december + 39_600_000, deadline: december + 35_700_000, pushAt: december + 35_000_000),
            ], now: december, on: connection)
            let window: Int64 = try await connection.query("SELECT id FROM callwindow.windows WHERE campaign_id = $1", id)[0].decode("id")
            try await store.materialize(windowID: window, now: december, on: connection)
            let claimed = try await store.claim(clientAccountID: client, owner: "cli", now: december + 35_000_000, limit: 10, leaseMs: 10_000, on: connection)
            #expect(claimed.count == 2)
            let attempt = DeliveryResult.Attempt(at: december + 35_000_010, tokenFingerprint: "0123456789ab", httpStatus: 200, latencyMs: 7, outcome: .accepted)
            try await store.record([
                DeliveryResult(delivery: claimed[0], next: .accepted, outcome: .accepted, attempts: [attempt]),
                DeliveryResult(delivery: claimed[1], next: .rejected, outcome: .rejected, reason: "Not a Truecaller user", attempts: [.init(at: december + 35_000_010, tokenFingerprint: "0123456789ab", httpStatus: 400, latencyMs: 7, outcome: .rejected, reason: "Not a Truecaller user")]),
            ], owner: "cli", now: december + 35_000_020, on: connection)

            let url = try TestDatabase.configuration().conninfoForTests
            let status = try await run(callwindowBinary, ["status", "--campaign", String(id), "--json", "--database-url", url])
            #expect(status.status == 0, "stderr: \(status.stderr)")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
            #expect(rows.count == 1)
            #expect((rows[0]["accepted"] as? NSNumber)?.intValue == 1)
            #expect((rows[0]["rejected"] as? NSNumber)?.intValue == 1)
            #expect((rows[0]["records"] as? NSNumber)?.intValue == 2)
            let table = try await run(callwindowBinary, ["status", "--campaign", String(id), "--database-url", url])
            #expect(table.stdout.contains("accepted"))

            let export = try await run(callwindowBinary, ["audit", "export", "--campaign", String(id), "--format", "csv", "--database-url", url])
            #expect(export.status == 0, "stderr: \(export.stderr)")
            let lines = export.stdout.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines[0].hasPrefix("attempted_at,client_account_id,campaign_id"))
            #expect(export.stdout.contains("\"Your parcel, today\""))
            #expect(export.stdout.contains("2026-12-01T09:43:20.010Z"))
            #expect(export.stdout.contains("Not a Truecaller user"))

            let unknown = try await run(callwindowBinary, ["status", "--campaign", "987654321", "--database-url", url])
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("campaign 987654321 does not exist"))

            // Retention: a far-future "now" drops the months that hold these rows (and nothing newer).
            let badPeriod = try await run(callwindowBinary, ["audit", "prune", "--older-than", "half a year", "--database-url", url])
            #expect(badPeriod.status != 0)
            #expect(badPeriod.stderr.contains("give days, e.g. 180d"))
        }
    }
}

@Suite("callwindow audit prune (the real binary, a database of its own)", .timeLimit(.minutes(3)))
struct AuditPruneTests {
    @Test("prune drops exactly the months that ended before the cutoff")
    func prune() async throws {
        let database = try await TestDatabase.fresh("prune")
        try await closing(try await PostgresConnection.connect(database)) { connection throws in
            try await TestDatabase.migrate(connection)
            let january2025: Int64 = 1_735_689_600_000
            _ = try await DeliveryStore(instance: "t", transport: .v1).ensureAuditPartitions(now: january2025, monthsAhead: 5, on: connection)
            let result = try await run(callwindowBinary, ["audit", "prune", "--older-than", "30d", "--now", "2025-05-15T00:00:00Z",
                                                          "--database-url", database.conninfoForTests])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            // Cutoff 2025-04-15: January, February and March ended before it; April did not.
            #expect(result.stdout.contains("dropped 3 month(s): push_attempts_2025_01, push_attempts_2025_02, push_attempts_2025_03"))
            let left = try await connection.query(
                "SELECT relname FROM pg_class WHERE relname ~ '^push_attempts_[0-9]{4}_[0-9]{2}$' ORDER BY relname").map { try $0.decode("relname", as: String.self) }
            #expect(left == ["push_attempts_2025_04", "push_attempts_2025_05", "push_attempts_2025_06"])
            let again = try await run(callwindowBinary, ["audit", "prune", "--older-than", "30d", "--now", "2025-05-15T00:00:00Z",
                                                         "--database-url", database.conninfoForTests])
            #expect(again.stdout.contains("nothing to prune"))
        }
    }
}
