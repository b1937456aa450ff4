import CallRecordAPI
public import Config
public import Foundation
import Planning
public import Postgres
import Store
import TokenPool

/// `callwindow labels sync`: copies each configured client account's labels (every page) from
/// the API into `callwindow.labels`, with a stored token when one is free, else a new one minted
/// within the shared budget.
public enum LabelSync {
    /// What one account's sync did.
    public struct Synced: Sendable {
        public let clientAccountID: UUID
        /// Labels the API listed.
        public let labels: Int
        /// Of them, dynamic.
        public let dynamic: Int
        /// Labels removed because the API no longer lists them.
        public let removed: Int
    }

    /// Syncs every configured account (only `only`, when given). One account's failure does not
    /// stop the others: each gets its result. Throws only for what stops every account (no key,
    /// no such client, no token cipher).
    public static func run(
        settings: Configuration, database: PostgresConfiguration, only: UUID? = nil
    ) async throws -> [(clientAccountID: UUID, result: Result<Synced, any Error>)] {
        let credentials = try Daemon.credentials(settings, only: only)
        let cipher = try Daemon.tokenCipher(settings)
        let pool = PostgresPool(configuration: database, maxConnections: 2)
        let api = Daemon.apiClient(settings)
        let clock = SystemClock()
        var results: [(clientAccountID: UUID, result: Result<Synced, any Error>)] = []
        for (id, key) in credentials {
            do {
                results.append((id, .success(try await sync(id, key: key, settings: settings, pool: pool, api: api, cipher: cipher, clock: clock))))
            } catch {
                results.append((id, .failure(error)))
            }
        }
        try? await api.shutdown()
        await pool.close()
        return results
    }

    private static func sync(
        _ id: UUID, key: APIKey, settings: Configuration, pool: PostgresPool, api: APIClient, cipher: TokenCipher, clock: SystemClock
    ) async throws -> Synced {
        let tokens = try TokenPool(
            configuration: .init(clientAccountID: id, key: key, transport: settings.api.transport, instance: Daemon.instanceName()),
            options: Daemon.tokenPoolOptions(settings), ledger: TokenStore(pool: pool, cipher: cipher), api: api, clock: clock)
        let labels: [Label]
        do {
            labels = try await tokens.withToken { token in try await api.labels(clientAccountID: id, token: token) }
        } catch {
            await tokens.shutdown()
            throw error
        }
        await tokens.shutdown()
        let replaced = try await pool.withConnection { connection in
            try await LabelStore().replace(
                clientAccountID: id, labels: labels.map { ($0.id, $0.name, $0.isDynamic) }, now: clock.now(), on: connection)
        }
        return Synced(clientAccountID: id, labels: labels.count, dynamic: labels.filter(\.isDynamic).count, removed: replaced.removed)
    }
}
