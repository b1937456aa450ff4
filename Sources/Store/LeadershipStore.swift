public import Postgres

/// Leadership by session advisory lock: held by the connection that took it until that
/// connection ends, so a crash or a lost connection hands it to whoever asks next.
public enum LeadershipStore {
    /// Takes the session advisory lock `key` on `connection` if no other session holds it.
    public static func tryLead(key: Int64, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("SELECT pg_try_advisory_lock($1) AS ok", key)[0].decode("ok", as: Bool.self)
    }

    /// `tryLead` for every key of `keys` in one statement; returns the keys now held.
    public static func tryLead(keys: [Int64], on connection: PostgresConnection) async throws -> Set<Int64> {
        guard !keys.isEmpty else { return [] }
        let rows = try await connection.query(
            "SELECT k, pg_try_advisory_lock(k) AS ok FROM unnest($1::int8[]) AS k", keys)
        var held = Set<Int64>()
        for row in rows where try row.decode("ok", as: Bool.self) { held.insert(try row.decode("k", as: Int64.self)) }
        return held
    }

    /// Gives up the session advisory locks `keys` held on `connection` (an account this instance
    /// no longer serves), so another session may take them at once.
    public static func release(keys: [Int64], on connection: PostgresConnection) async throws {
        guard !keys.isEmpty else { return }
        _ = try await connection.query("SELECT pg_advisory_unlock(k) AS released FROM unnest($1::int8[]) AS k", keys)
    }

    /// One round trip and nothing else: the leader's heartbeat when nothing else is due.
    public static func heartbeat(on connection: PostgresConnection) async throws {
        _ = try await connection.query("SELECT 1 AS alive")
    }

    /// The state of backend `pid` as the server sees it (`active`, `idle`, `idle in
    /// transaction`, …), asked on another connection; nil when no such backend exists.
    public static func backendState(pid: Int32, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("SELECT coalesce(state, 'unknown') AS state FROM pg_stat_activity WHERE pid = $1", pid)
        return try rows.first?.decode("state", as: String.self)
    }
}
