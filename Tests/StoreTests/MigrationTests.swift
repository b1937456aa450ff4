import Foundation
import Postgres
import Store
import TestSupport
import Testing

@Suite("Migrations", .timeLimit(.minutes(3)))
struct MigrationTests {
    func migrations() throws -> [Migration] { try Migration.load(from: TestDatabase.sqlDirectory) }

    @Test("the second run is a no-op")
    func idempotent() async throws {
        try await closing(try await PostgresConnection.connect(try await TestDatabase.fresh("mig"))) { connection throws in
            let migrator = Migrator(migrations: try migrations())
            let first = try await migrator.migrate(connection)
            #expect(first.applied.count == migrator.migrations.count)
            #expect(first.applied.first == "001_campaign_schema.sql")
            let second = try await migrator.migrate(connection)
            #expect(second.applied.isEmpty)
            #expect(second.alreadyApplied.count == migrator.migrations.count)
            let recorded = try await connection.query("SELECT count(*) AS n FROM callwindow.schema_migrations")
            #expect(try recorded[0].decode("n", as: Int.self) == migrator.migrations.count)
        }
    }

    @Test("two concurrent runs apply each migration exactly once")
    func concurrent() async throws {
        let database = try await TestDatabase.fresh("migc")
        let migrator = Migrator(migrations: try migrations())
        let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await closing(try await PostgresConnection.connect(database)) { connection throws in
                        return try await migrator.migrate(connection)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(reports.map(\.applied.count).reduce(0, +) == migrator.migrations.count)
        #expect(reports.filter { !$0.applied.isEmpty }.count == 1)
    }

    @Test("editing an applied migration is reported, not re-run")
    func editedMigration() async throws {
        try await closing(try await PostgresConnection.connect(try await TestDatabase.fresh("mige"))) { connection throws in
            var files = try migrations()
            _ = try await Migrator(migrations: files).migrate(connection)
            files[0] = Migration(version: files[0].version, name: files[0].name, sql: files[0].sql + "\n-- edited\n")
            let error = await #expect(throws: StoreError.self) { try await Migrator(migrations: files).migrate(connection) }
            #expect(error?.code == .migrationChanged)
            #expect(error?.description.contains("001_campaign_schema.sql was changed after it was applied") == true)
        }
    }

    @Test("a failing migration names its file and leaves nothing half-applied")
    func failingMigration() async throws {
        try await closing(try await PostgresConnection.connect(try await TestDatabase.fresh("migf"))) { connection throws in
            let files = try migrations() + [Migration(version: 999, name: "999_broken.sql", sql: "CREATE TABLE callwindow.half (id int); SELECT nonsense;")]
            let error = await #expect(throws: PostgresError.self) { try await Migrator(migrations: files).migrate(connection) }
            #expect(error?.description.hasPrefix("migration 999_broken.sql failed: server error: ") == true, "\(String(describing: error))")
            #expect(error?.sqlState == "42703", "SELECT nonsense: an undefined column")
            #expect(error?.description.contains("nonsense") == false, "the server's words stay out of the description")
            #expect(error?.debugDescription.contains("nonsense") == true)
            let half = try await connection.query("SELECT to_regclass('callwindow.half') IS NULL AS gone")
            #expect(try half[0].decode("gone", as: Bool.self))
            let recorded = try await connection.query("SELECT count(*) AS n FROM callwindow.schema_migrations WHERE version = 999")
            #expect(try recorded[0].decode("n", as: Int.self) == 0)
        }
    }

    @Test("a database migrated by a newer build is refused")
    func newerDatabase() async throws {
        try await closing(try await PostgresConnection.connect(try await TestDatabase.fresh("mign"))) { connection throws in
            let files = try migrations()
            _ = try await Migrator(migrations: files + [Migration(version: 998, name: "998_future.sql", sql: "SELECT 1;")]).migrate(connection)
            let error = await #expect(throws: StoreError.self) { try await Migrator(migrations: files).migrate(connection) }
            #expect(error?.code == .migrationUnknown)
        }
    }

    @Test("the schema version the code expects is the newest migration file, and the daemon's refusals name what to do")
    func expectedVersion() throws {
        let directory = URL(fileURLWithPath: ProcessInfo.processInfo.environment["CALLWINDOW_SQL_DIR"] ?? "sql")
        let newest = try Migration.load(from: directory).map(\.version).max()
        #expect(newest == SchemaCheck.expectedVersion, "bump SchemaCheck.expectedVersion with each new migration")
        #expect(SchemaCheck.refusal(applied: SchemaCheck.expectedVersion) == nil)
        #expect(SchemaCheck.refusal(applied: nil)?.contains("run callwindow migrate") == true)
        #expect(SchemaCheck.refusal(applied: SchemaCheck.expectedVersion - 1)?.contains("run callwindow migrate first") == true)
        #expect(SchemaCheck.refusal(applied: SchemaCheck.expectedVersion + 1)?.contains("newer than this build knows") == true)
    }
}
