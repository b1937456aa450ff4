import ArgumentParser
import Daemon
import Foundation
import Planning
import Postgres
import Store

/// `callwindow audit`: the append-only audit trail.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Export or prune the audit trail (callwindow.push_attempts).",
        subcommands: [Export.self, Prune.self]
    )

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a campaign's audit rows as CSV, oldest first.")

        @Option(name: .customLong("campaign"), help: "The campaign id.")
        var campaign: Int64

        @Option(help: "Output format (csv).")
        var format: String = "csv"

        @Option(help: ArgumentHelp("Write to FILE instead of standard output.", valueName: "FILE"))
        var output: String?

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard format == "csv" else { throw ValidationError("--format \"\(format)\" is not supported: use csv") }
        }

        func run() async throws {
            do {
                let connection = try await PostgresConnection.connect(try database.configuration())
                _ = try await ProgressStore().campaigns([campaign], on: connection)
                let handle: FileHandle
                if let output {
                    guard FileManager.default.createFile(atPath: output, contents: nil),
                          let file = FileHandle(forWritingAtPath: output) else {
                        throw CallWindowError("cannot write \(output): check that its folder exists and is writable")
                    }
                    handle = file
                } else {
                    handle = FileHandle.standardOutput
                }
                handle.write(Data((ProgressStore.auditColumns.joined(separator: ",") + "\n").utf8))
                try await ProgressStore().exportAudit(campaignID: campaign, on: connection) { rows in
                    var chunk = ""
                    for row in rows { chunk += row.map(Self.csvField).joined(separator: ",") + "\n" }
                    handle.write(Data(chunk.utf8))
                }
                await connection.close()
            } catch {
                throw fail(error)
            }
        }

        static func csvField(_ value: String?) -> String {
            guard let value else { return "" }
            if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return value
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop whole months of audit rows older than a retention period (e.g. 180d).",
            discussion: "A month is dropped once all of it is older than the period; rows are never updated or deleted one by one."
        )

        @Option(name: .customLong("older-than"), help: "Retention period: a number of days, e.g. 180d.")
        var olderThan: String

        @Option(help: ArgumentHelp("Prune as of this instant (ISO 8601 or epoch ms; default now).", valueName: "INSTANT"))
        var now: String?

        @OptionGroup var database: DatabaseOptions

        var days: Int? {
            guard olderThan.hasSuffix("d"), let days = Int(olderThan.dropLast()), days >= 1 else { return nil }
            return days
        }

        func validate() throws {
            guard days != nil else { throw ValidationError("--older-than \"\(olderThan)\" is not a period: give days, e.g. 180d") }
            if let now, PreviewCommand.parseInstant(now) == nil {
                throw ValidationError("--now \"\(now)\" is neither an ISO 8601 instant nor epoch milliseconds")
            }
        }

        func run() async throws {
            do {
                let instant = now.flatMap(PreviewCommand.parseInstant) ?? SystemClock().now()
                let cutoff = instant - Int64(days ?? 180) * 86_400_000
                let connection = try await PostgresConnection.connect(try database.configuration())
                let dropped = try await ProgressStore().pruneAudit(before: cutoff, on: connection)
                await connection.close()
                print(dropped.isEmpty ? "nothing to prune" : "dropped \(dropped.count) month(s): \(dropped.joined(separator: ", "))")
            } catch {
                throw fail(error)
            }
        }
    }
}
