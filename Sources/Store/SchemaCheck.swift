public import Postgres

/// Checks a database before a command relies on it.
public enum SchemaCheck {
    /// Whether the schema `callwindow migrate` creates is there (the scheduler's and the token
    /// ledger's tables); `false` when it is missing or older than this build needs.
    public static func isMigrated(_ pool: PostgresPool) async throws -> Bool {
        do {
            _ = try await pool.query("SELECT 1 FROM callwindow.windows LIMIT 0")
            _ = try await pool.query("SELECT 1 FROM callwindow.tokens LIMIT 0")
            return true
        } catch let error as PostgresError where error.sqlState == "42P01" || error.sqlState == "3F000" {
            return false
        }
    }

    /// A round trip to the server (readiness).
    public static func ping(_ pool: PostgresPool) async throws {
        _ = try await pool.query("SELECT 1")
    }
}
