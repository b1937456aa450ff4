import Foundation
import Postgres
import Store
import TestSupport

/// The test database, migrated (the Migrator is safe to run from parallel tests), as a pool.
func migratedPool(maxConnections: Int = 8) async throws -> PostgresPool {
    let configuration = try TestDatabase.configuration()
    let connection = try await PostgresConnection.connect(configuration)
    try await TestDatabase.migrate(connection)
    await connection.close()
    return PostgresPool(configuration: configuration, maxConnections: maxConnections)
}

/// A cipher with a fresh random key.
func randomCipher() throws -> TokenCipher {
    try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
}
