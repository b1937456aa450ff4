import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Postgres
import TestSupport
import Testing

/// Uses a cluster of its own: restarting the shared one would break the tests running beside it.
@Suite("Server restarts", .serialized, .timeLimit(.minutes(3)))
struct RestartTests {
    @Test("after pg_ctl restart the next query on the pool succeeds")
    func poolSurvivesRestart() async throws {
        try await withPrivateCluster("restart") { url, folder in
            let pool = PostgresPool(configuration: try PostgresConfiguration(url), maxConnections: 2)
            let before = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)

            let restarted = try await run(pgclusterScript, ["restart", folder.path], environment: ["PGCLUSTER_FAST": "1"])
            try #require(restarted.status == 0, "pgcluster restart failed: \(restarted.stderr)")

            let after = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)
            #expect(after != before)
            #expect(try await pool.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
            await pool.close()
        }
    }
}
