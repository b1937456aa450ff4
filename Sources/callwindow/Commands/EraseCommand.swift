import ArgumentParser
import Foundation
import Planning
import Postgres
import Store

/// `callwindow erase`: forget one person of one client account (see `ErasureStore`).
struct EraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Replace a phone number everywhere in a client account (audit trail, queue, campaigns) with a keyed pseudonym.",
        discussion: """
            Records of the phone still waiting are cancelled first. Runs as the schema owner or a member of \
            callwindow_admin. The do-not-contact list keeps the number, so the person is never called again. \
            The key (base64, 32 bytes) comes from the environment variable named by --key-env; keep it: the \
            same key gives the same pseudonym, so the rows of one person still match.
            """
    )

    @Option(name: .customLong("client"), help: "The client account (uuid).")
    var client: String

    @Option(name: .customLong("phone"), help: "The phone number to erase, as stored or with + and spaces.")
    var phone: String

    @Option(name: .customLong("key-env"), help: "Environment variable holding the pseudonym key.")
    var keyEnv = "CALLWINDOW_ERASURE_KEY"

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard UUID(uuidString: client) != nil else { throw ValidationError("--client must be a uuid, not \"\(client)\"") }
    }

    func run() async throws {
        do {
            let store = try ErasureStore.fromEnvironment(variable: keyEnv)
            let connection = try await PostgresConnection.connect(try database.configuration())
            let changed: [(relation: String, changed: Int)]
            do {
                changed = try await store.erase(clientAccountID: UUID(uuidString: client)!, phone: phone, now: SystemClock().now(),
                                                instance: ProcessInfo.processInfo.hostName, on: connection)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            for (relation, count) in changed { print("\(relation): \(count)") }
        } catch {
            throw fail(error)
        }
    }
}
