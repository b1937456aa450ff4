import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Parameters and decoding against a real server", .timeLimit(.minutes(3)))
struct CodingTests {
    @Test("every supported type round-trips, NULL included")
    func roundTrip() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let uuid = UUID()
            let date = Date(timeIntervalSince1970: 1_767_225_600.123)  // 2026-01-01T00:00:00.123Z
            let bytes = Data([0, 1, 2, 255, 0x5C, 0x27])
            let row = try #require(try await connection.query(
                """
                SELECT $1::int8 AS i, $2::int8 AS i64, $3::float8 AS d, $4::bool AS b, $5::text AS s,
                       $6::uuid AS u, $7::timestamptz AS t, $8::bytea AS y, $9::int8[] AS ia,
                       $10::text[] AS sa, $11::uuid[] AS ua, $12::text AS n, $13::text AS e,
                       $14::int4 AS i32, $15::int2 AS i16, $16::text[] AS na, $17::timestamptz[] AS ta,
                       $18::float8[] AS da, $19::bool[] AS ba, $20::int8[] AS empty
                """,
                42, Int64.min, -1.5e-300, true, "héllo wörld ✓ 📞", uuid, date, bytes, [1, -2, 3],
                ["a", "", "ü"], [uuid], String?.none, "", Int32(-7), Int16(300), ["x", nil] as [String?],
                [date], [0.25, .infinity], [true, false], [Int]()
            ).first)
            #expect(try row.decode("i", as: Int.self) == 42)
            #expect(try row.decode("i64", as: Int64.self) == Int64.min)
            #expect(try row.decode("d", as: Double.self) == -1.5e-300)
            #expect(try row.decode("b", as: Bool.self) == true)
            #expect(try row.decode("s", as: String.self) == "héllo wörld ✓ 📞")
            #expect(try row.decode("u", as: UUID.self) == uuid)
            #expect(try row.decode("t", as: Date.self) == date)
            #expect(try row.decode("y", as: Data.self) == bytes)
            #expect(try row.decode("ia", as: [Int].self) == [1, -2, 3])
            #expect(try row.decode("sa", as: [String].self) == ["a", "", "ü"])
            #expect(try row.decode("ua", as: [UUID].self) == [uuid])
            #expect(try row.decode("n", as: String?.self) == nil)
            #expect(try row.decode("e", as: String.self) == "")
            #expect(try row.decode("i32", as: Int32.self) == -7)
            #expect(try row.decode("i16", as: Int16.self) == 300)
            #expect(try row.decode("na", as: [String?].self) == ["x", nil])
            #expect(try row.decode("ta", as: [Date].self) == [date])
            #expect(try row.decode("da", as: [Double].self) == [0.25, .infinity])
            #expect(try row.decode("ba", as: [Bool].self) == [true, false])
            #expect(try row.decode("empty", as: [Int].self) == [])
            #expect(try row.decode(0, as: Int.self) == 42)
        }
    }

    @Test("timestamps keep millisecond precision both ways, and the server sees the same instant")
    func millisecondTimestamps() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            for millis: Int64 in [0, 1, 999, 1_767_225_600_001, 1_767_225_600_999, 4_102_444_799_999, -1] {
                let date = Date(timeIntervalSince1970: Double(millis) / 1000)
                let row = try #require(try await connection.query(
                    "SELECT $1::timestamptz AS t, (extract(epoch FROM $1::timestamptz) * 1000)::int8 AS ms", date
                ).first)
                let back = try row.decode("t", as: Date.self)
                #expect(Int64((back.timeIntervalSince1970 * 1000).rounded()) == millis)
                #expect(try row.decode("ms", as: Int64.self) == millis)
            }
        }
    }

    @Test("a parameter holding SQL is stored verbatim, never executed")
    func injectionIsStoredVerbatim() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let table = "inj_\(UUID().uuidString.prefix(8).lowercased())"
            try await connection.execute("CREATE TABLE \(table) (v text)")
            let hostile = "'; DROP TABLE \(table); --"
            try await connection.execute("INSERT INTO \(table) (v) VALUES ($1)", hostile)
            let stored = try await connection.query("SELECT v FROM \(table)")
            #expect(stored.count == 1)
            #expect(try stored[0].decode("v", as: String.self) == hostile)
            try await connection.execute("DROP TABLE \(table)")
        }
    }

    @Test("decoding the wrong type or an unexpected NULL is a clear error naming the column")
    func decodingErrors() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let row = try #require(try await connection.query("SELECT 'x'::text AS word, NULL::int8 AS nothing").first)
            let mismatch = #expect(throws: PostgresError.self) { try row.decode("word", as: Int.self) }
            #expect(mismatch?.code == .decoding)
            #expect(mismatch?.description.contains("column \"word\"") == true)
            let null = #expect(throws: PostgresError.self) { try row.decode("nothing", as: Int.self) }
            #expect(null?.description.contains("\"nothing\" is NULL") == true)
            let missing = #expect(throws: PostgresError.self) { try row.decode("absent", as: Int.self) }
            #expect(missing?.description.contains("no column \"absent\"") == true)
            #expect(try row.decode("nothing", as: Int?.self) == nil)
        }
    }

    @Test("a text parameter with a NUL character is refused before it reaches the server")
    func nulInText() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT $1::text", "a\u{0}b")
            }
            #expect(error?.code == .encoding)
            // The connection is still usable afterwards.
            #expect(try await connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
        }
    }
}
