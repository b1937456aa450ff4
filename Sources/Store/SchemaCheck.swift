public import Postgres

/// Checks a database before a command relies on it.
public enum SchemaCheck {
    /// The newest migration this build's code is written against (the highest `NNN` of `sql/`;
    /// a test keeps the two equal).
    public static let expectedVersion = 11

    /// The newest migration applied to the database, `nil` when none is (no schema yet).
    public static func appliedVersion(_ pool: PostgresPool) async throws -> Int? {
        do {
            return try await pool.query("SELECT max(version) AS v FROM callwindow.schema_migrations")[0].decode("v", as: Int?.self)
        } catch let error as PostgresError where error.sqlState == "42P01" || error.sqlState == "3F000" {
            return nil
        }
    }

    /// Why the daemon of this build must not run against a database at migration `applied`
    /// (`nil`: none), or `nil` when it may: the schema must be exactly the one it knows. An older
    /// one lacks what it uses; a newer one was made by a newer CallWindow, whose changes this
    /// build cannot honour.
    public static func refusal(applied: Int?) -> String? {
        guard let applied else { return "the database has no CallWindow schema: run callwindow migrate first" }
        if applied < expectedVersion {
            return "the database's CallWindow schema is at migration \(applied), older than this build needs (\(expectedVersion)): run callwindow migrate first"
        }
        if applied > expectedVersion {
            return "the database's CallWindow schema is at migration \(applied), newer than this build knows (\(expectedVersion)): it was migrated by a newer CallWindow; run that version (see the README on upgrades)"
        }
        return nil
    }

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
