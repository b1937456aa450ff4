import Foundation
import Postgres
import TestSupport
import Testing

/// Every libpq call runs on its connection's own dispatch queue, never on Swift's cooperative
/// thread pool. Shown by the mechanism, not by timing: more statements are blocked in the server
/// at once than the cooperative pool has threads, and the test's own tasks still run.
@Suite("Nothing blocks the cooperative pool", .timeLimit(.minutes(1)))
struct CooperativePoolTests {
    @Test("statements blocked in the server, more than the cooperative pool has threads, leave it free")
    func nothingBlocksTheCooperativePool() async throws {
        let blocked = max(4, ProcessInfo.processInfo.activeProcessorCount * 2)
        let pool = PostgresPool(configuration: try TestDatabase.configuration(), maxConnections: blocked)
        let holder = try await TestDatabase.connect()
        let observer = try await TestDatabase.connect()
        let key = Int64.random(in: 1...Int64.max)
        try await holder.execute("SELECT pg_advisory_lock($1)", key)
        // `blocked` statements wait in the server for the lock the holder has.
        let waiting = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<blocked { group.addTask { try await pool.query("SELECT pg_advisory_lock($1), pg_advisory_unlock($1)", key) } }
                try await group.waitForAll()
            }
        }
        // If those blocking calls sat on cooperative threads (there are as many as cores), nothing
        // below could run: no connection, no query, no counting, and the time limit would fail it.
        try await waitUntil(timeout: .seconds(30), "all \(blocked) statements waiting for the lock in the server") {
            let rows = try await observer.query(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = ($1 & 4294967295)::oid", key)
            return try rows[0].decode("n", as: Int.self) == blocked
        }
        // Plain work on the cooperative pool goes on meanwhile: a burst of child tasks completes.
        let sum = await withTaskGroup(of: Int.self) { group in
            for n in 1...100 { group.addTask { await Task.yield(); return n } }
            return await group.reduce(0, +)
        }
        #expect(sum == 5050)
        try await holder.execute("SELECT pg_advisory_unlock($1)", key)
        try await withTimeout(.seconds(30), "the blocked statements to finish once the lock is free") { try await waiting.value }
        await holder.close()
        await observer.close()
        await pool.close()
    }
}
