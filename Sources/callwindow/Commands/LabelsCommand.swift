import ArgumentParser
import Daemon
import Foundation

/// `callwindow labels sync`: copies the client accounts' labels from the API into the database.
struct LabelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labels",
        abstract: "Manage the labels campaigns refer to.",
        subcommands: [Sync.self]
    )

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch every label of the configured client accounts (all pages) and upsert them into callwindow.labels.",
            discussion: """
                Labels the API no longer lists are removed; campaigns using them are held, with a \
                problem shown in callwindow.campaign_progress, until their label is fixed. Uses a \
                stored token when one is free, else mints one within the shared budget.
                """
        )

        @Option(name: .customLong("client"), help: "Only this client account (uuid).")
        var client: String?

        @OptionGroup var common: ConfigOptions

        func validate() throws {
            if let client, UUID(uuidString: client) == nil { throw ValidationError("--client \"\(client)\" is not a uuid") }
        }

        func run() async throws {
            let (settings, database) = try common.loadWithDatabase()
            let results: [(clientAccountID: UUID, result: Result<LabelSync.Synced, any Error>)]
            do {
                results = try await LabelSync.run(settings: settings, database: database, only: client.flatMap(UUID.init(uuidString:)))
            } catch {
                throw fail(error)
            }
            for (id, result) in results {
                switch result {
                case .success(let synced):
                    print("client \(id): \(synced.labels) labels (\(synced.dynamic) dynamic) synced, \(synced.removed) removed")
                case .failure(let error):
                    printError("callwindow: error: client \(id): \(error)")
                }
            }
            if results.contains(where: { if case .failure = $0.result { true } else { false } }) { throw ExitCode(1) }
        }
    }
}
