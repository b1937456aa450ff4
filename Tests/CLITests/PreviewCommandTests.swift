import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Postgres
import Store
import TestSupport
import Testing

/// A migrated shared test database, and a client account of the test's own.
func previewFixture() async throws -> (connection: PostgresConnection, client: UUID, label: UUID) {
    let connection = try await TestDatabase.connect()
    try await TestDatabase.migrate(connection)
    let client = UUID()
    let label = UUID()
    try await connection.execute(
        "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1, $2, 'Acme', 'dynamic')", client, label)
    return (connection, client, label)
}

func preview(_ arguments: [String]) async throws -> ProcessResult {
    let url = try TestDatabase.configuration().conninfoForTests
    return try await run(callwindowBinary, ["preview", "--database-url", url] + arguments)
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite("callwindow preview (the real binary)", .timeLimit(.minutes(6)))
struct PreviewCommandTests {
    @Test("JSON for a two-day campaign: windows, records, push times before the deadline")
    func twoDays() async throws {
        try await closing(try await previewFixture(), connection: { $0.0 }) { resource throws in
            let (connection, client, label) = resource
            let id: Int64 = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead, call_reason)
                VALUES ($1, 'two days', $2, '2026-12-01T00:00:00Z', '2026-12-03T00:00:00Z', '10 minutes', 'Your parcel arrives today')
                RETURNING id
                """, client, label)[0].decode("id")
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930111111'), ($1, '4930222222')", id)
            try await connection.execute(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4915100000000 + g)::text FROM generate_series(1, 500) g", id)
            // One explicit pair already in the cross product (merges) and one new (adds a record).
            try await connection.execute(
                "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) VALUES ($1, '4930111111', '4915100000001'), ($1, '4930333333', '4915100000001')", id)
            let now: Int64 = 1_796_083_200_000 - 86_400_000  // 2026-11-30T00:00:00Z
            let result = try await preview(["--campaign", String(id), "--format", "json", "--now", String(now), "--tokens", "2"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let json = try jsonObject(result.stdout)
            #expect(json["now"] as? Int64 == now || (json["now"] as? NSNumber)?.int64Value == now)
            let capacity = try #require(json["capacity"] as? [String: Any])
            #expect((capacity["tokens"] as? NSNumber)?.intValue == 2)
            #expect(capacity["transport"] as? String == "v1")
            let campaigns = try #require(json["campaigns"] as? [[String: Any]])
            #expect(campaigns.count == 1)
            let windows = try #require(campaigns[0]["windows"] as? [[String: Any]])
            #expect(windows.count == 2)
            for (index, window) in windows.enumerated() {
                #expect((window["seq"] as? NSNumber)?.intValue == index)
                #expect((window["records"] as? NSNumber)?.intValue == 1001)
                let pushDone = try #require((window["push_done_at"] as? NSNumber)?.int64Value)
                let deadline = try #require((window["deadline"] as? NSNumber)?.int64Value)
                let starts = try #require((window["starts_at"] as? NSNumber)?.int64Value)
                #expect(deadline == starts - 600_000)
                #expect(pushDone <= deadline)
                #expect((window["late_by_ms"] as? NSNumber)?.int64Value == 0)
                #expect(window["state"] as? String == "planned")
            }
            #expect((windows[0]["starts_at"] as? NSNumber)?.int64Value == 1_796_083_200_000)
        }
    }

    @Test("text and SVG render; the SVG parses as XML")
    func textAndSVG() async throws {
        try await closing(try await previewFixture(), connection: { $0.0 }) { resource throws in
            let (connection, client, label) = resource
            let id: Int64 = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, time_zone, daily_start, daily_end)
                VALUES ($1, 'Berlin <evenings> & more', $2, '2026-12-01T00:00:00Z', '2026-12-08T00:00:00Z', 'Europe/Berlin', '18:00', '21:00')
                RETURNING id
                """, client, label)[0].decode("id")
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930111111')", id)
            try await connection.execute("INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '4915100000001')", id)
            let text = try await preview(["--campaign", String(id), "--now", "2026-11-30T12:00:00Z"])
            #expect(text.status == 0, "stderr: \(text.stderr)")
            #expect(text.stdout.contains("Berlin <evenings> & more"))
            #expect(text.stdout.contains("18:00"))  // local time
            #expect(text.stdout.contains("17:00"))  // the same instant in UTC
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("preview-\(UUID().uuidString).svg")
            defer { try? FileManager.default.removeItem(at: file) }
            let svg = try await preview(["--campaign", String(id), "--now", "2026-11-30T12:00:00Z", "--format", "svg", "--output", file.path])
            #expect(svg.status == 0, "stderr: \(svg.stderr)")
            let data = try Data(contentsOf: file)
            #expect(String(decoding: data, as: UTF8.self).hasPrefix("<svg") || String(decoding: data, as: UTF8.self).hasPrefix("<?xml"))
            let parser = XMLParser(data: data)
            #expect(parser.parse(), "SVG is not well-formed XML")
        }
    }

    @Test("a campaign without callers or receivers is reported as a problem, not a crash")
    func emptyCampaign() async throws {
        try await closing(try await previewFixture(), connection: { $0.0 }) { resource throws in
            let (connection, client, label) = resource
            try await connection.execute(
                "INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at) VALUES ($1, 'ro', $2, '2026-12-01', '2026-12-02')",
                client, label)
            let result = try await preview(["--client", client.uuidString, "--format", "json"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let campaigns = try #require(try jsonObject(result.stdout)["campaigns"] as? [[String: Any]])
            #expect(campaigns.count == 1)
            let problems = try #require(campaigns[0]["problems"] as? [String])
            #expect(problems.contains { $0.contains("caller") })
        }
    }

    @Test("bad input gets a clear message: unknown campaign, unreachable database, unparsable --now")
    func badInput() async throws {
        let (connection, _, _) = try await previewFixture()
        await connection.close()
        let unknown = try await preview(["--campaign", "987654321"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("campaign 987654321 does not exist"))
        let unreachable = try await run(callwindowBinary, ["preview", "--database-url", "postgres://u:pw-SECRET@127.0.0.1:1/db?connect_timeout=2"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("could not connect"))
        #expect(!unreachable.stderr.contains("pw-SECRET"))
        let badNow = try await preview(["--now", "yesterday-ish"])
        #expect(badNow.status != 0)
        #expect(badNow.stderr.contains("--now \"yesterday-ish\" is neither an ISO 8601 instant"))
        let badTransport = try await preview(["--transport", "carrier-pigeon"])
        #expect(badTransport.status != 0)
        #expect(badTransport.status == 64, "a bad option value is a usage error")
        #expect(badTransport.stderr.contains("'carrier-pigeon' is invalid for '--transport") && badTransport.stderr.contains("'v1', 'v2' or 'batch'"))
    }

    @Test("a static label makes every record invalid, reported with the reason")
    func invalidLabel() async throws {
        try await closing(try await previewFixture(), connection: { $0.0 }) { resource throws in
            let (connection, client, label) = resource
            let id: Int64 = try await connection.query(
                "INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at) VALUES ($1, 'lbl', $2, '2026-12-01', '2026-12-02') RETURNING id",
                client, label)[0].decode("id")
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930111111')", id)
            try await connection.execute("INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '4915100000001'), ($1, '4915100000002')", id)
            try await connection.execute("UPDATE callwindow.labels SET label_type = 'static' WHERE client_account_id = $1", client)
            let result = try await preview(["--campaign", String(id), "--format", "json", "--now", "2026-11-30T00:00:00Z"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let campaign = try #require((try jsonObject(result.stdout)["campaigns"] as? [[String: Any]])?.first)
            #expect((campaign["invalid_records"] as? NSNumber)?.intValue == 2)
            #expect((campaign["problems"] as? [String])?.contains { $0.contains("static label") } == true)
        }
    }
}

@Suite("callwindow preview at scale", .serialized, .timeLimit(.minutes(6)))
struct PreviewScaleTests {
    @Test("1,000,000 receivers × 3 callers × 90 days: every window holds 3,000,000 records")
    func millionReceivers() async throws {
        try await closing(try await previewFixture(), connection: { $0.0 }) { resource throws in
            let (connection, client, label) = resource
            let id: Int64 = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead)
                VALUES ($1, 'million', $2, '2027-01-01T00:00:00Z', '2027-04-01T00:00:00Z', '1 hour') RETURNING id
                """, client, label)[0].decode("id")
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930111111'), ($1, '4930222222'), ($1, '4930333333')", id)
            try await connection.execute(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4915100000000 + g)::text FROM generate_series(1, 1000000) g", id)
            try await connection.execute("ANALYZE callwindow.campaign_receivers")
            let result = try await preview(["--campaign", String(id), "--format", "json", "--now", "2026-12-01T00:00:00Z", "--tokens", "10"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let campaign = try #require((try jsonObject(result.stdout)["campaigns"] as? [[String: Any]])?.first)
            let windows = try #require(campaign["windows"] as? [[String: Any]])
            #expect(windows.count == 90)
            #expect(windows.allSatisfy { ($0["records"] as? NSNumber)?.intValue == 3_000_000 })
            #expect(windows.allSatisfy { ($0["late_by_ms"] as? NSNumber)?.int64Value == 0 })
            try await connection.execute("DELETE FROM callwindow.campaigns WHERE id = $1", id)
        }
    }
}
