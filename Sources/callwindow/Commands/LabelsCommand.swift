import ArgumentParser
import CallRecordAPI
import Config
import Foundation
import Planning
import Postgres
import Store
import TokenPool

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
            do {
                let settings = try common.load()
                let database = PostgresPool(configuration: try common.databaseConfiguration(settings), maxConnections: 2)
                let cipher = try TokenCipher.fromEnvironment(variable: settings.tokens.keyEnv)
                let credentials = try Daemon.credentials(settings, only: client.flatMap(UUID.init(uuidString:)))
                let api = Daemon.apiClient(settings)
                let clock = SystemClock()
                let transport = Transport(rawValue: settings.api.transport) ?? .v1
                var failure: (any Error)?
                for (id, key) in credentials {
                    do {
                        let tokens = try TokenPool(
                            configuration: .init(clientAccountID: id, key: key, transport: transport, instance: Daemon.instanceName()),
                            options: Daemon.tokenPoolOptions(settings, transport: transport),
                            ledger: TokenStore(pool: database, cipher: cipher), api: api, clock: clock)
                        let labels = try await tokens.withToken { token in try await api.labels(clientAccountID: id, token: token) }
                        await tokens.shutdown()
                        let result = try await database.withConnection { connection in
                            try await LabelStore().replace(
                                clientAccountID: id, labels: labels.map { ($0.id, $0.name, $0.isDynamic) },
                                now: clock.now(), on: connection)
                        }
                        let dynamic = labels.filter(\.isDynamic).count
                        print("client \(id): \(labels.count) labels (\(dynamic) dynamic) synced, \(result.removed) removed")
                    } catch {
                        printError("callwindow: error: client \(id): \(error)")
                        failure = error
                    }
                }
                try? await api.shutdown()
                await database.close()
                if failure != nil { throw ExitCode(1) }
            } catch let error as ValidationError {
                throw error
            } catch let error as ExitCode {
                throw error
            } catch {
                throw fail(error)
            }
        }
    }
}
