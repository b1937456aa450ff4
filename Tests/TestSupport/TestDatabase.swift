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
