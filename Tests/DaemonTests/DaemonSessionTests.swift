import Daemon
import Postgres
import TestSupport
import Testing

@Suite("The daemon's database sessions (Daemon.sessions), against a real server", .timeLimit(.minutes(2)))
struct DaemonSessionTests {
    /// Whether the server compiled a small aggregate to machine code on `connection`, with JIT's
    /// cost threshold at 0 so that any session with JIT on compiles it.
    static func compiles(_ connection: PostgresConnection) async throws -> Bool {
        try await connection.execute("SET jit_above_cost = 0")
        // EXPLAIN prints its JIT section only with costs on.
        let plan = try await connection.query("EXPLAIN (ANALYZE) SELECT sum(g) FROM generate_series(1, 1000) g")
        return try plan.contains { try $0.decode("QUERY PLAN", as: String.self).hasPrefix("JIT:") }
    }

    static func setting(_ name: String, on connection: PostgresConnection) async throws -> String {
        try await connection.query("SHOW \(name)")[0].decode(name, as: String.self)
    }

    @Test("queue and leader sessions never compile a plan (JIT off) and carry their statement timeouts; only the leader's end when idle a minute")
    func sessionSettings() async throws {
        let server = try TestDatabase.configuration()
        let (queue, leader) = Daemon.sessions(server)
        // The client's own limit on a silent connection lies beyond the server's statement timeout.
        #expect(queue.answerTimeoutMs == 150_000 && queue.statementTimeoutMs == 120_000)
        #expect(leader.answerTimeoutMs == 630_000 && leader.statementTimeoutMs == 600_000)
        for (configuration, statementTimeout, idleTimeout) in [(queue, "2min", "0"), (leader, "10min", "1min")] {
            try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
                #expect(try await Self.setting("jit", on: connection) == "off")
                #expect(try await Self.setting("statement_timeout", on: connection) == statementTimeout)
                #expect(try await Self.setting("idle_session_timeout", on: connection) == idleTimeout)
                #expect(try await Self.setting("idle_in_transaction_session_timeout", on: connection) == "1min")
                #expect(try await !Self.compiles(connection))
            }
        }
        // What the setting prevents: a session with the server's defaults compiles the same
        // statement, where the server has JIT at all.
        try await closing(try await PostgresConnection.connect(server)) { connection throws in
            if try await connection.query("SELECT pg_jit_available() AS available")[0].decode("available", as: Bool.self) {
                #expect(try await Self.compiles(connection))
            }
        }
    }
}
