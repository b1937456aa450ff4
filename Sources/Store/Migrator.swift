import Crypto
public import Foundation
public import Postgres

/// One numbered `.sql` file under `sql/`.
public struct Migration: Sendable, Hashable {
    /// The number the file name starts with (`001_schema.sql` → 1).
    public var version: Int
    /// The file name, e.g. `001_campaign_schema.sql`.
    public var name: String
    /// The file's text, run as one script inside the migration's transaction.
    public var sql: String
    /// SHA-256 of the file's bytes, lowercase hex.
    public var checksum: String

    /// A migration from its parts; `checksum` is computed from `sql`.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        checksum = SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads every `NNN_name.sql` file of `directory`, in version order. `.sql` files whose name
    /// does not start with a digit (`roles.sql`) are administrator scripts, not migrations: skipped.
    public static func load(from directory: URL) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw StoreError(.migrationsUnreadable, "cannot read the migrations folder \(directory.path): set --sql-dir or CALLWINDOW_SQL_DIR to the project's sql/ folder")
        }
        var migrations: [Migration] = []
        for name in names.sorted() where name.hasSuffix(".sql") && name.first?.isASCII == true && name.first?.isNumber == true {
            let digits = name.prefix { $0.isASCII && $0.isNumber }
            guard let version = Int(digits), name.dropFirst(digits.count).first == "_" else {
                throw StoreError(.migrationsUnreadable, "migration file \(name) does not start with a number and \"_\": name it like 002_add_views.sql")
            }
            let url = directory.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path), let sql = String(data: data, encoding: .utf8) else {
                throw StoreError(.migrationsUnreadable, "migration file \(url.path) cannot be read as UTF-8 text")
            }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw StoreError(.migrationsUnreadable, "migration files \(clash.name) and \(name) have the same number \(version)")
            }
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        return migrations.sorted { $0.version < $1.version }
    }
}

/// Applies migrations: each file once, in order, each in its own transaction, recorded with its
/// checksum in `callwindow.schema_migrations`, serialized across processes by an advisory lock.
public struct Migrator: Sendable {
    /// What `migrate` did.
    public struct Report: Sendable {
        /// Names of the migrations this run applied, in order.
        public var applied: [String] = []
        /// Names of the migrations found already applied, checksum unchanged.
        public var alreadyApplied: [String] = []
    }

    /// Advisory lock key for migrations (an arbitrary constant, "cw-migr" in ASCII).
    static let lockKey: Int64 = 0x63_77_2D_6D_69_67_72

    /// The migrations, applied in the order given (`Migration.load` sorts them by version).
    public let migrations: [Migration]

    /// A migrator for `migrations`; nothing touches the database until `migrate`.
    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// Brings the database up to date. Safe to run twice and from two processes at once; an
    /// applied migration whose file changed is an error, not re-run.
    public func migrate(_ connection: PostgresConnection, progress: (String) -> Void = { _ in }) async throws -> Report {
        try await connection.execute("SELECT pg_advisory_lock($1)", Self.lockKey)
        do {
            let report = try await migrateLocked(connection, progress: progress)
            try await connection.execute("SELECT pg_advisory_unlock($1)", Self.lockKey)
            return report
        } catch {
            _ = try? await connection.execute("SELECT pg_advisory_unlock($1)", Self.lockKey)
            throw error
        }
    }

    private func migrateLocked(_ connection: PostgresConnection, progress: (String) -> Void) async throws -> Report {
        try await connection.executeScript("""
            CREATE SCHEMA IF NOT EXISTS callwindow;
            CREATE TABLE IF NOT EXISTS callwindow.schema_migrations (
              version integer PRIMARY KEY,
              name text NOT NULL,
              checksum text NOT NULL,
              applied_at timestamptz NOT NULL DEFAULT now()
            );
            """)
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in try await connection.query("SELECT version, name, checksum FROM callwindow.schema_migrations") {
            applied[try row.decode("version")] = (try row.decode("name"), try row.decode("checksum"))
        }
        let known = Set(migrations.map(\.version))
        if let unknown = applied.keys.sorted().first(where: { !known.contains($0) }), let entry = applied[unknown] {
            throw StoreError(.migrationUnknown, "the database has migration \(entry.name) applied, which this build does not have: it was migrated by a newer CallWindow, so use that version")
        }
        var report = Report()
        for migration in migrations {
            if let existing = applied[migration.version] {
                guard existing.checksum == migration.checksum else {
                    throw StoreError(.migrationChanged, "migration \(migration.name) was changed after it was applied (checksum \(existing.checksum.prefix(12)) in the database, \(migration.checksum.prefix(12)) on disk): restore the original file and put the change in a new numbered migration")
                }
                report.alreadyApplied.append(migration.name)
                continue
            }
            progress("applying \(migration.name)")
            try await connection.transaction { connection in
                do {
                    try await connection.executeScript(migration.sql)
                } catch var error as PostgresError {
                    error.context = "migration \(migration.name)"
                    throw error
                }
                try await connection.execute(
                    "INSERT INTO callwindow.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum
                )
            }
            report.applied.append(migration.name)
        }
        return report
    }
}
