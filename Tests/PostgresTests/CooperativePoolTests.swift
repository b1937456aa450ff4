import Foundation
import Postgres
import TestSupport
import Testing

/// Timing-sensitive: `scripts/test` runs this suite on its own, before the others, so that CPU
/// load from tests running beside it cannot stretch the ticker's gaps.
@Suite("Nothing blocks the cooperative pool")
struct CooperativePoolTests {
    @Test("four pg_sleep(1) overlap while the cooperative pool keeps ticking")
    func nothingBlocksTheCooperativePool() async throws {
        let pool = PostgresPool(configuration: try TestDatabase.configuration(), maxConnections: 4)
        // Open the four connections first so the timing measures only the sleeps.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try await pool.query("SELECT pg_sleep(0.2)") } }
            try await group.waitForAll()
        }
        let clock = ContinuousClock()
        let ticker = Task { () -> Duration in
            var worst: Duration = .zero
            var last = clock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(10))
                let now = clock.now
                worst = max(worst, now - last)
                last = now
            }
            return worst
        }
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try await pool.query("SELECT pg_sleep(1)") } }
            try await group.waitForAll()
        }
        let elapsed = clock.now - started
        ticker.cancel()
        let worstGap = await ticker.value
        print("4 × pg_sleep(1) took \(elapsed); longest ticker gap \(worstGap)")
        #expect(elapsed < .milliseconds(2500))
        #expect(worstGap < .milliseconds(250))
        await pool.close()
    }

}
