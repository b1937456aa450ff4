public import Postgres

/// Leadership by session advisory lock: held by the connection that took it until that
/// connection ends, so a crash or a lost connection hands it to whoever asks next.
public enum LeadershipStore {
    /// Takes the session advisory lock `key` on `connection` if no other session holds it.
    public static func tryLead(key: Int64, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("SELECT pg_try_advisory_lock($1) AS ok", key)[0].decode("ok", as: Bool.self)
    }
}
