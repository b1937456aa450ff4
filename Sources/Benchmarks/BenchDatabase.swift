import Foundation
import Postgres
import Processes
import Store

/// Runs `body` against the database at `url`, or — without one — against a private cluster
/// started for it (`fast`: fsync off) and stopped afterwards, also when `body` throws. `body`
/// gets the cluster it runs on, `nil` for a given URL.
func withBenchDatabase<T>(
    url: String?, label: String = "bench", fast: Bool, _ body: (PostgresConfiguration, PrivateCluster?) async throws -> T
) async throws -> T {
    if let url { return try await body(try PostgresConfiguration(url), nil) }
    let cluster = try await PrivateCluster.start(label: label, fast: fast)
    do {
        let result = try await body(try PostgresConfiguration(cluster.url), cluster)
        await cluster.stop()
        return result
    } catch {
        await cluster.stop()
        throw error
    }
}

/// Brings `database` to the current schema (the migrations of `benchSQLDirectory()`).
func migrateBenchDatabase(_ database: PostgresConfiguration) async throws {
    let connection = try await PostgresConnection.connect(database)
    do {
        _ = try await Migrator(migrations: Migration.load(from: benchSQLDirectory())).migrate(connection)
    } catch {
        await connection.close()
        throw error
    }
    await connection.close()
}
