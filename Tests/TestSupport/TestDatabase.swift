public import Foundation
public import Postgres

/// The PostgreSQL server the tests run against, started privately by `scripts/test`.
///
/// Without `CALLWINDOW_TEST_DATABASE_URL` every integration test fails with a message saying
/// how to run it; nothing is skipped silently.
public enum TestDatabase {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "CALLWINDOW_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a private PostgreSQL cluster"
        }
    }

    /// The configured test server.
    public static func configuration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment["CALLWINDOW_TEST_DATABASE_URL"], !url.isEmpty else {
            throw NotConfigured()
        }
        return try PostgresConfiguration(url)
    }

    /// A new connection to the shared test database.
    public static func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(try configuration())
    }

    /// Creates an empty database of its own for a test that needs a clean slate (migrations).
    public static func fresh(_ label: String = "t") async throws -> PostgresConfiguration {
        let base = try configuration()
        let name = "cw_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = try await PostgresConnection.connect(base)
        try await admin.execute("CREATE DATABASE " + PostgresConnection.quoteIdentifier(name))
        await admin.close()
        return base.database(name)
    }

    /// The repository's root folder (for sql/, scripts/ and the built binary).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The `sql/` folder.
    public static var sqlDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["CALLWINDOW_SQL_DIR"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.appendingPathComponent("sql")
    }
}

/// Runs `body` on `connection`, then closes it, whether `body` returned or threw: the scoped
/// form of a `defer` that cannot await.
public func closing<T>(_ connection: PostgresConnection, _ body: (PostgresConnection) async throws -> T) async throws -> T {
    try await scoped(body, on: connection, then: { await $0.close() })
}

/// `body(resource)`, then `close(resource)` whether `body` returned or threw.
private func scoped<Resource, T>(
    _ body: (Resource) async throws -> T, on resource: Resource, then close: (Resource) async -> Void
) async throws -> T {
    do {
        let value = try await body(resource)
        await close(resource)
        return value
    } catch {
        await close(resource)
        throw error
    }
}

/// Runs `body` on `resource` (a fixture, a tuple) that holds a connection, then closes that
/// connection, whether `body` returned or threw.
public func closing<Resource, T>(
    _ resource: Resource, connection: (Resource) -> PostgresConnection, _ body: (Resource) async throws -> T
) async throws -> T {
    try await closing(connection(resource)) { _ in try await body(resource) }
}

extension TestDatabase {
    /// A pool on the test database. `closing(_:_:)` closes it when the test is done.
    public static func pool(maxConnections: Int) async throws -> PostgresPool {
        PostgresPool(configuration: try configuration(), maxConnections: maxConnections)
    }
}

/// Runs `body` on `pool`, then closes it, whether `body` returned or threw.
public func closing<T>(_ pool: PostgresPool, _ body: (PostgresPool) async throws -> T) async throws -> T {
    try await scoped(body, on: pool, then: { await $0.close() })
}
