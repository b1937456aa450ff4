import Foundation
import Postgres
import TestSupport
import Testing

@Suite("callwindow migrate (the real binary)", .timeLimit(.minutes(3)))
struct MigrateCommandTests {
    func url(_ configuration: PostgresConfiguration) -> String {
        // `database(_:)` yields a key=value conninfo, which the CLI accepts like a URL.
        configuration.conninfoForTests
    }

    @Test("twice: the second run is a no-op; two at once are safe")
    func migrateTwiceAndConcurrently() async throws {
        let database = try await TestDatabase.fresh("cli")
        let environment = ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path]
        async let first = run(callwindowBinary, ["migrate", "--database-url", url(database)], environment: environment)
        async let second = run(callwindowBinary, ["migrate", "--database-url", url(database)], environment: environment)
        let results = try await [first, second]
        for result in results { #expect(result.status == 0, "stderr: \(result.stderr)") }
        #expect(results.filter { $0.stdout.contains("applying 001_campaign_schema.sql") }.count == 1)
        let again = try await run(callwindowBinary, ["migrate"], environment: environment.merging(["CALLWINDOW_DATABASE_URL": url(database)]) { $1 })
        #expect(again.status == 0)
        #expect(again.stdout.contains("schema is up to date"))
    }

    @Test("an unreachable database is one clear line on stderr and exit status 1")
    func unreachable() async throws {
        let result = try await run(callwindowBinary, ["migrate", "--database-url", "postgres://u:pw-SECRET@127.0.0.1:1/x?connect_timeout=2"],
                                   environment: ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("callwindow: error: "))
        #expect(result.stderr.contains("127.0.0.1:1"))
        #expect(!result.stderr.contains("pw-SECRET"))
    }

    @Test("no database URL at all is a usage error that says how to give one")
    func noURL() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLWINDOW_DATABASE_URL"] = ""
        let result = try await run(callwindowBinary, ["migrate"], environment: ["CALLWINDOW_DATABASE_URL": ""])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--database-url"))
    }
}
