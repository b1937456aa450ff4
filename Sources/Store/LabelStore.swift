public import Foundation
public import Postgres

/// Writes the labels fetched from the API into `callwindow.labels`.
public struct LabelStore: Sendable {
    /// A stateless store; every call takes the connection it runs on.
    public init() {}

    /// What a sync changed.
    public struct SyncResult: Sendable, Equatable {
        /// Labels inserted or updated (every label given counts, changed or not).
        public var upserted: Int
        /// Labels deleted because the API no longer lists them.
        public var removed: Int
    }

    /// Makes the account's labels exactly `labels` (id, name, dynamic?): new ones are added,
    /// changed ones updated, ones the API no longer lists removed — a campaign that used a
    /// removed label is then held by the planner (shown as a problem) until it is fixed.
    public func replace(clientAccountID: UUID, labels: [(id: UUID, name: String, isDynamic: Bool)], now: Int64,
                        on connection: PostgresConnection) async throws -> SyncResult {
        try await connection.transaction { connection in
            let upserted = try await connection.execute(
                """
                INSERT INTO callwindow.labels (client_account_id, id, name, label_type, synced_at)
                SELECT $1, id, name, CASE WHEN dynamic THEN 'dynamic' ELSE 'static' END, timestamptz 'epoch' + $5 * interval '1 millisecond'
                FROM unnest($2::uuid[], $3::text[], $4::bool[]) AS t(id, name, dynamic)
                ON CONFLICT (client_account_id, id) DO UPDATE
                  SET name = excluded.name, label_type = excluded.label_type, synced_at = excluded.synced_at
                """, clientAccountID, labels.map(\.id), labels.map(\.name), labels.map(\.isDynamic), now)
            let removed = try await connection.execute(
                "DELETE FROM callwindow.labels WHERE client_account_id = $1 AND NOT (id = ANY($2))", clientAccountID, labels.map(\.id))
            return SyncResult(upserted: upserted, removed: removed)
        }
    }
}
