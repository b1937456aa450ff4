import ArgumentParser
import Foundation
import Postgres
import Store

/// `callwindow migrate`: brings the database schema up to date.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the numbered sql/*.sql migrations that are not applied yet.",
        discussion: """
            Idempotent: a second run does nothing. Each file runs in its own transaction; an \
            advisory lock serializes concurrent runs; an applied file that was edited is an error.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(name: .customLong("sql-dir"), help: ArgumentHelp(
        "Folder of the migration files (default: $CALLWINDOW_SQL_DIR, ./sql, or the one beside the binary).", valueName: "DIR"))
    var sqlDirectory: String?

    func run() async throws {
        do {
            let migrations = try Migration.load(from: try SQLDirectory.locate(explicit: sqlDirectory))
            let connection = try await PostgresConnection.connect(try database.configuration())
            let report = try await Migrator(migrations: migrations).migrate(connection) { print($0) }
            await connection.close()
            if report.applied.isEmpty {
                print("schema is up to date (\(report.alreadyApplied.count) migrations applied before)")
            } else {
                print("applied \(report.applied.count) migration(s); \(report.alreadyApplied.count) were applied before")
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
    }
}

/// Finds the `sql/` folder: explicit option, `$CALLWINDOW_SQL_DIR`, `./sql`, or relative to the
/// executable (`.build/<triple>/<config>/callwindow` in a checkout, `<prefix>/share/callwindow/sql`
/// when installed).
enum SQLDirectory {
    static func locate(explicit: String?) throws -> URL {
        let fileManager = FileManager.default
        if let explicit { return URL(fileURLWithPath: explicit) }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CALLWINDOW_SQL_DIR"], !fromEnvironment.isEmpty {
            return URL(fileURLWithPath: fromEnvironment)
        }
        var candidates = [URL(fileURLWithPath: fileManager.currentDirectoryPath).appendingPathComponent("sql")]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(folder.appendingPathComponent("sql"))
            candidates.append(folder.appendingPathComponent("share/callwindow/sql"))
            folder = folder.deletingLastPathComponent()
        }
        for candidate in candidates where fileManager.fileExists(atPath: candidate.appendingPathComponent("001_campaign_schema.sql").path) {
            return candidate
        }
        throw ValidationError("cannot find the sql/ migrations folder: pass --sql-dir DIR or set CALLWINDOW_SQL_DIR")
    }
}
