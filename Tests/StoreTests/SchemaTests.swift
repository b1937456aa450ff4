import Foundation
import Planning
import Postgres
import Store
import TestSupport
import Testing

/// The shared test database, migrated (the migrator's advisory lock makes this safe to call
/// from tests running in parallel).
func migratedConnection() async throws -> PostgresConnection {
    let connection = try await TestDatabase.connect()
    try await TestDatabase.migrate(connection)
    return connection
}

/// One client account with a dynamic label, a static label and one valid campaign.
struct Fixture {
    let client = UUID()
    let dynamicLabel = UUID()
    let staticLabel = UUID()
    var campaign: Int64 = 0

    static func make(_ connection: PostgresConnection) async throws -> Fixture {
        var fixture = Fixture()
        try await connection.execute(
            "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1, $2, 'Acme', 'dynamic'), ($1, $3, 'Acme static', 'static')",
            fixture.client, fixture.dynamicLabel, fixture.staticLabel)
        fixture.campaign = try await connection.query(
            """
            INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at)
            VALUES ($1, 'valid', $2, '2026-12-01T00:00:00Z', '2026-12-03T00:00:00Z') RETURNING id
            """, fixture.client, fixture.dynamicLabel)[0].decode("id")
        return fixture
    }
}

/// A row the database must reject, and what the rejection must say.
struct BadRow: Sendable, CustomTestStringConvertible {
    let name: String
    let sql: String
    let message: String
    let constraint: String
    var testDescription: String { name }
}

/// `$1` client account, `$2` dynamic label, `$3` static label, `$4` the valid campaign's id.
let campaignColumns = "client_account_id, name, label_id, starts_at, ends_at"
let good = "$1, 'c', $2, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z'"

let badRows: [BadRow] = [
    BadRow(name: "blank campaign name",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns)) VALUES ($1, '  ', $2, '2026-12-01', '2026-12-02')",
           message: "campaign name is required and may not be blank", constraint: "campaigns_name_required"),
    BadRow(name: "unknown label",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns)) VALUES ($1, 'c', gen_random_uuid(), '2026-12-01', '2026-12-02')",
           message: "is not a label of client account", constraint: "campaigns_label_known"),
    BadRow(name: "static label",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns)) VALUES ($1, 'c', $3, '2026-12-01', '2026-12-02')",
           message: "is a static label: only dynamic labels can be used", constraint: "campaigns_label_dynamic"),
    BadRow(name: "another client's label",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns)) VALUES (gen_random_uuid(), 'c', $2, '2026-12-01', '2026-12-02')",
           message: "is not a label of client account", constraint: "campaigns_label_known"),
    BadRow(name: "label name of 41 characters",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), label_name) VALUES (\(good), repeat('é', 41))",
           message: "campaign label_name \"\(String(repeating: "é", count: 41))\" has 41 characters: it must have 1 to 40", constraint: "campaigns_label_name_valid"),
    BadRow(name: "empty label name",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), label_name) VALUES (\(good), '')",
           message: "has 0 characters: it must have 1 to 40", constraint: "campaigns_label_name_valid"),
    BadRow(name: "call reason of 9 characters",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), 'Too short')",
           message: "campaign call_reason \"Too short\" has 9 characters: it must have 10 to 100", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason of 101 characters",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), repeat('a', 101))",
           message: "has 101 characters: it must have 10 to 100", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason with #",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), 'Order #1234 is here')",
           message: "contains \"#\", which the API does not support", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason with /",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), 'Pickup and/or delivery')",
           message: "contains \"/\", which the API does not support", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason with _",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), 'Delivery_update today')",
           message: "contains \"_\"", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason starting with a dash",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), '-Your parcel is here')",
           message: "may not start or end with \".\", \",\" or \"-\"", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason ending with a comma",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), 'Your parcel is here,')",
           message: "may not start or end with \".\", \",\" or \"-\"", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "call reason with a trailing space",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), call_reason) VALUES (\(good), 'Your parcel is here ')",
           message: "may not start or end with a space", constraint: "campaigns_call_reason_valid"),
    BadRow(name: "ends before it starts",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns)) VALUES ($1, 'c', $2, '2026-12-02', '2026-12-01')",
           message: "must be after starts_at", constraint: "campaigns_period_valid"),
    BadRow(name: "ends when it starts",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns)) VALUES ($1, 'c', $2, '2026-12-02', '2026-12-02')",
           message: "must be after starts_at", constraint: "campaigns_period_valid"),
    BadRow(name: "missing ends_at",
           sql: "INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at) VALUES ($1, 'c', $2, '2026-12-02')",
           message: "campaign starts_at and ends_at are both required", constraint: "campaigns_period_valid"),
    BadRow(name: "unknown time zone",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), time_zone) VALUES (\(good), 'Mars/Olympus_Mons')",
           message: "campaign time_zone \"Mars/Olympus_Mons\" is not a time zone name the server knows", constraint: "campaigns_time_zone_known"),
    BadRow(name: "daily_start without daily_end",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), daily_start) VALUES (\(good), '09:00')",
           message: "daily_start and daily_end must be given together", constraint: "campaigns_daily_hours_valid"),
    BadRow(name: "equal daily hours",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), daily_start, daily_end) VALUES (\(good), '09:00', '09:00')",
           message: "a daily window needs two different times", constraint: "campaigns_daily_hours_valid"),
    BadRow(name: "weekday 8",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), daily_start, daily_end, weekdays) VALUES (\(good), '09:00', '17:00', '{1,8}')",
           message: "holds 8: ISO weekdays are 1 (Monday) to 7 (Sunday)", constraint: "campaigns_weekdays_valid"),
    BadRow(name: "weekday 0",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), daily_start, daily_end, weekdays) VALUES (\(good), '09:00', '17:00', '{0}')",
           message: "holds 0", constraint: "campaigns_weekdays_valid"),
    BadRow(name: "empty weekdays",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), daily_start, daily_end, weekdays) VALUES (\(good), '09:00', '17:00', '{}')",
           message: "campaign weekdays is empty", constraint: "campaigns_weekdays_valid"),
    BadRow(name: "weekdays without daily hours",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), weekdays) VALUES (\(good), '{1}')",
           message: "weekdays needs daily_start and daily_end", constraint: "campaigns_weekdays_valid"),
    BadRow(name: "negative lead",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), lead) VALUES (\(good), '-5 minutes')",
           message: "campaign lead -00:05:00 is negative", constraint: "campaigns_lead_valid"),
    BadRow(name: "unknown status",
           sql: "INSERT INTO callwindow.campaigns (\(campaignColumns), status) VALUES (\(good), 'completed')",
           message: "campaign status \"completed\" is not valid: expected \"active\", \"paused\" or \"cancelled\"", constraint: "campaigns_status_valid"),
    BadRow(name: "status changed to something unknown",
           sql: "UPDATE callwindow.campaigns SET status = 'invalid' WHERE id = $4 AND $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "campaign status \"invalid\" is not valid", constraint: "campaigns_status_valid"),
    BadRow(name: "label changed to a static one",
           sql: "UPDATE callwindow.campaigns SET label_id = $3 WHERE id = $4 AND $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL",
           message: "is a static label", constraint: "campaigns_label_dynamic"),
    BadRow(name: "receiver that is not a phone number",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $4, '+91 98x' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "receiver phone \"+91 98x\" is not a phone number: expected 8 to 15 digits with country code", constraint: "campaign_receivers_phone_valid"),
    BadRow(name: "receiver of 7 digits",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $4, '1234567' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "receiver phone \"1234567\" is not a phone number", constraint: "campaign_receivers_phone_valid"),
    BadRow(name: "receiver of 16 digits",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $4, '1234567890123456' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "is not a phone number", constraint: "campaign_receivers_phone_valid"),
    BadRow(name: "receiver starting with 0",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $4, '0049301234567' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "receiver phone \"0049301234567\" is not a phone number", constraint: "campaign_receivers_phone_valid"),
    BadRow(name: "receiver call reason with @",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone, call_reason) SELECT $4, '919876543211', 'Mail us at a@b.example' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "receiver call_reason \"Mail us at a@b.example\" contains \"@\"", constraint: "campaign_receivers_call_reason_valid"),
    BadRow(name: "receiver label name of 41 characters",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone, label_name) SELECT $4, '919876543212', repeat('x', 41) WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "receiver label_name", constraint: "campaign_receivers_label_name_valid"),
    BadRow(name: "receiver of an unknown campaign",
           sql: "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT -1, '919876543213' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL AND $4::int8 IS NOT NULL",
           message: "violates foreign key constraint \"campaign_receivers_campaign_exists\"", constraint: "campaign_receivers_campaign_exists"),
    BadRow(name: "caller with letters",
           sql: "INSERT INTO callwindow.campaign_callers (campaign_id, phone) SELECT $4, '+49 30 CALL NOW' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "caller phone \"+49 30 CALL NOW\" is not a phone number", constraint: "campaign_callers_phone_valid"),
    BadRow(name: "pair with a bad receiver",
           sql: "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) SELECT $4, '4930123456', 'abc' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "pair receiver phone \"abc\" is not a phone number", constraint: "campaign_pairs_receiver_valid"),
    BadRow(name: "pair with a bad caller",
           sql: "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) SELECT $4, '12', '4930123456' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "pair caller phone \"12\" is not a phone number", constraint: "campaign_pairs_caller_valid"),
    BadRow(name: "pair call reason ending with a period",
           sql: "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver, call_reason) SELECT $4, '4930123456', '4930123457', 'Your parcel is here.' WHERE $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL",
           message: "pair call_reason \"Your parcel is here.\" may not start or end with", constraint: "campaign_pairs_call_reason_valid"),
    BadRow(name: "label of an unknown type",
           sql: "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) SELECT $1, gen_random_uuid(), 'L', 'shiny' WHERE $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL AND $4::int8 IS NOT NULL",
           message: "label label_type \"shiny\" is not valid: expected \"dynamic\" or \"static\"", constraint: "labels_label_type_valid"),
    BadRow(name: "label with a blank name",
           sql: "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) SELECT $1, gen_random_uuid(), '', 'dynamic' WHERE $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL AND $4::int8 IS NOT NULL",
           message: "label name is required and may not be blank", constraint: "labels_name_required"),
]

@Suite("The campaign schema rejects bad rows with clear messages", .timeLimit(.minutes(3)))
struct SchemaTests {
    @Test("each bad row is rejected with its message, constraint and SQLSTATE", arguments: badRows)
    func rejects(_ bad: BadRow) async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let fixture = try await Fixture.make(connection)
            let error = await #expect(throws: PostgresError.self) {
                try await connection.execute(bad.sql, fixture.client, fixture.dynamicLabel, fixture.staticLabel, fixture.campaign)
            }
            #expect(error?.message.contains(bad.message) == true, "got: \(error?.message ?? "no error")")
            #expect(error?.constraint == bad.constraint)
            #expect(error?.sqlState == (bad.constraint.hasSuffix("_exists") ? "23503" : "23514"))
            // Nothing was written: the valid campaign is untouched.
            let status = try await connection.query("SELECT status, label_id FROM callwindow.campaigns WHERE id = $1", fixture.campaign)[0]
            #expect(try status.decode("status", as: String.self) == "active")
            #expect(try status.decode("label_id", as: UUID.self) == fixture.dynamicLabel)
        }
    }

    @Test("the corpus holds at least 25 bad rows")
    func corpusSize() { #expect(badRows.count >= 25) }

    @Test("phone numbers are normalised on the way in")
    func normalisesPhones() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let fixture = try await Fixture.make(connection)
            let stored = try await connection.query(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, $2), ($1, $3) RETURNING phone",
                fixture.campaign, "+91 98765-43210", "(+1) 415.555.0100").map { try $0.decode("phone", as: String.self) }
            #expect(stored == ["919876543210", "14155550100"])
            let caller = try await connection.query(
                "INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, $2) RETURNING phone", fixture.campaign, "+49 (30) 1234-5678")
            #expect(try caller[0].decode("phone", as: String.self) == "493012345678")
            let pair = try await connection.query(
                "INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) VALUES ($1, $2, $3) RETURNING caller, receiver",
                fixture.campaign, "+49 30 1234 5678", "+91 98765 43210")[0]
            #expect(try pair.decode("caller", as: String.self) == "493012345678")
            #expect(try pair.decode("receiver", as: String.self) == "919876543210")
        }
    }

    @Test("rules at their edges: 40-character label name, 10- and 100-character call reasons, weekdays sorted")
    func acceptsEdges() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let fixture = try await Fixture.make(connection)
            let row = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, label_name, call_reason,
                                                  time_zone, daily_start, daily_end, weekdays, lead)
                VALUES ($1, 'edges', $2, '2026-12-01', '2026-12-02', $3, $4, 'Asia/Kolkata', '22:00', '06:00', '{5,1,1,3}', '0 seconds')
                RETURNING weekdays, time_zone
                """, fixture.client, fixture.dynamicLabel, String(repeating: "ü", count: 40), "Ten charsx")[0]
            #expect(try row.decode("weekdays", as: [Int].self) == [1, 3, 5])
            _ = try await connection.execute(
                "UPDATE callwindow.campaigns SET call_reason = $2 WHERE id = $1", fixture.campaign, String(repeating: "a", count: 100))
            _ = try await connection.execute(
                "UPDATE callwindow.campaigns SET call_reason = $2 WHERE id = $1", fixture.campaign, "Ten chars.x")
        }
    }

    @Test("the commented example campaign is accepted as written")
    func exampleCampaign() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let url = TestDatabase.sqlDirectory.appendingPathComponent("examples/example_campaign.sql")
            let sql = try String(contentsOf: url, encoding: .utf8)
            let before = try await connection.query("SELECT coalesce(max(id), 0) AS id FROM callwindow.campaigns")[0].decode("id", as: Int64.self)
            try await connection.executeScript(sql)
            let campaign = try await connection.query(
                "SELECT id, weekdays FROM callwindow.campaigns WHERE name = 'Parcel delivery calls' AND id > $1", before)
            #expect(campaign.count == 1)
            let id = try campaign[0].decode("id", as: Int64.self)
            let receivers = try await connection.query(
                "SELECT phone FROM callwindow.campaign_receivers WHERE campaign_id = $1 ORDER BY phone", id).map { try $0.decode("phone", as: String.self) }
            #expect(receivers == ["4915123456789", "4916098765432"])
            let callers = try await connection.query("SELECT count(*) AS n FROM callwindow.campaign_callers WHERE campaign_id = $1", id)
            #expect(try callers[0].decode("n", as: Int.self) == 2)
        }
    }

    @Test("epoch milliseconds and timestamptz convert exactly in every session time zone, and the conversions are inlined into statements")
    func millisecondConversions() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            // Year 1, before the epoch, the epoch, DST changes in Europe and Lord Howe, today, 2100.
            let instants: [Int64] = [-62_135_596_800_000, -1, 0, 1, 1_774_745_999_999, 1_774_746_000_000, 1_775_314_800_000,
                                     1_796_154_078_123, 4_102_444_800_999]
            for zone in ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"] {
                try await connection.execute("SELECT set_config('TimeZone', $1, false)", zone)
                for ms in instants {
                    let row = try await connection.query(
                        """
                        SELECT callwindow.ms_of(callwindow.at_ms($1)) AS back,
                               callwindow.at_ms($1) = timestamptz '1970-01-01 00:00:00+00' + $1 * interval '1 millisecond' AS same,
                               to_char(callwindow.at_ms($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS utc
                        """, ms)[0]
                    #expect(try row.decode("back", as: Int64.self) == ms, "\(ms) in \(zone)")
                    #expect(try row.decode("same", as: Bool.self), "\(ms) in \(zone)")
                    if ms == 1_796_154_078_123 { #expect(try row.decode("utc", as: String.self) == "2026-12-01 19:41:18.123") }
                }
            }
            try await connection.execute("SELECT set_config('TimeZone', 'UTC', false)")
            // Inlined: the plan holds the arithmetic, not a call of a SQL function per row.
            let plan = try await connection.query(
                "EXPLAIN (VERBOSE) SELECT callwindow.ms_of(t), callwindow.at_ms(g) FROM generate_series(1::int8, 3::int8) g, clock_timestamp() t")
                .map { try $0.decode("QUERY PLAN", as: String.self) }.joined(separator: "\n")
            #expect(!plan.contains("ms_of") && !plan.contains("at_ms"), "\(plan)")
        }
    }

    @Test("deleting a campaign removes its callers, receivers and pairs")
    func cascade() async throws {
        try await closing(try await migratedConnection()) { connection throws in
            let fixture = try await Fixture.make(connection)
            try await connection.execute("INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '919876543210')", fixture.campaign)
            try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '919876543211')", fixture.campaign)
            try await connection.execute("DELETE FROM callwindow.campaigns WHERE id = $1", fixture.campaign)
            let left = try await connection.query(
                "SELECT (SELECT count(*) FROM callwindow.campaign_receivers WHERE campaign_id = $1) + (SELECT count(*) FROM callwindow.campaign_callers WHERE campaign_id = $1) AS n",
                fixture.campaign)
            #expect(try left[0].decode("n", as: Int.self) == 0)
        }
    }

    @Test("a change notification names its table and client account, one per statement and account")
    func changeNotificationsNameTheAccount() async throws {
        try await closing(try await migratedConnection()) { listener throws in
            try await listener.listen("callwindow_changes")
            try await closing(try await migratedConnection()) { connection throws in
                let fixture = try await Fixture.make(connection)
                try await connection.execute(
                    "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) VALUES ($1, '919876543210'), ($1, '919876543212')", fixture.campaign)
                try await connection.execute(
                    "INSERT INTO callwindow.do_not_contact (client_account_id, phone, reason) VALUES ($1, '919876543212', 'opted out')", fixture.client)
                try await connection.execute("DELETE FROM callwindow.campaign_receivers WHERE campaign_id = $1", fixture.campaign)
                let account = fixture.client.uuidString.lowercased()
                let expected = ["labels", "campaigns", "campaign_receivers", "do_not_contact", "campaign_receivers"].map { "\($0):\(account)" }
                var received: [String] = []
                // Other tests notify for their own accounts meanwhile: only this account's count.
                while received.count < expected.count, let notification = try await listener.nextNotification(timeout: .seconds(10)) {
                    if notification.payload.hasSuffix(account) { received.append(notification.payload) }
                }
                #expect(received == expected)
            }
        }
    }

    @Test("a host clock 20 s off reads the database's time once calibrated")
    func clockCalibration() async throws {
        struct Skewed: WallClock {
            let skew: Int64
            func now() -> Int64 { SystemClock().now() + skew }
            func sleep(until deadline: Int64) async throws { try await SystemClock().sleep(until: deadline - skew) }
            func sleepIgnoringCancellation(until deadline: Int64) async { await SystemClock().sleepIgnoringCancellation(until: deadline - skew) }
        }
        try await closing(try await TestDatabase.pool(maxConnections: 2)) { pool throws in
            for skew: Int64 in [-20_000, 20_000] {
                let clock = CalibratedClock(raw: Skewed(skew: skew))
                var samples: [CalibratedClock.Sample] = []
                for _ in 0..<3 { samples.append(try await ClockStore.sample(clock.raw, on: pool)) }
                clock.calibrate(samples)
                // The database runs on this host: its clock is the system's, within the readings' round trips.
                let database = try await ClockStore.sample(SystemClock(), on: pool)
                #expect(abs(clock.now() - database.reference) < 1_000, "skew \(skew): offset \(clock.offset)")
                #expect(abs(clock.offset + skew) < 1_000)
            }
        }
    }
}
