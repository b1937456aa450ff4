import ArgumentParser
import Foundation
import Postgres
import Store

/// `callwindow status`: progress of campaigns, from the `campaign_progress` view.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show campaign progress: records pending, accepted, rejected, expired, cancelled; next push; problems."
    )

    @Option(name: .customLong("campaign"), help: "A campaign id (repeatable; default: every campaign).")
    var campaigns: [Int64] = []

    @Flag(help: "Print JSON (an array of campaign objects) instead of a table.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        do {
            let connection = try await PostgresConnection.connect(try database.configuration())
            let progress = try await ProgressStore().campaigns(campaigns, on: connection)
            await connection.close()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(progress), as: UTF8.self))
            } else {
                print(Self.table(progress))
            }
        } catch {
            throw fail(error)
        }
    }

    static func table(_ rows: [CampaignProgress]) -> String {
        if rows.isEmpty { return "no campaigns" }
        let header = ["id", "name", "status", "windows", "records", "pending", "in flight", "accepted", "rejected", "expired", "cancelled", "next push (UTC)", "late"]
        let formatter = ISO8601DateFormatter()
        var lines = [header]
        for row in rows {
            lines.append([
                String(row.campaignID), String(row.name.prefix(28)), row.status, String(row.windows), String(row.records),
                String(row.pending), String(row.inFlight), String(row.accepted), String(row.rejected), String(row.expired),
                String(row.cancelled),
                row.nextPushAt.map { formatter.string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "—",
                row.maxLateByMs > 0 ? "\(row.maxLateByMs / 1000) s" : "—",
            ])
        }
        let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        var text = lines.map { line in
            line.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index <= 2 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
        for row in rows where !row.problems.isEmpty {
            text += "\ncampaign \(row.campaignID): " + row.problems.joined(separator: " ")
        }
        return text
    }
}
