public import Planning

/// Runs `body` while simulated time on `clock` moves only when the work under test is idle:
/// whenever `busy()` is false (no request out, no housekeeping running) and the same sleepers
/// wait on the clock across a short look, the clock jumps to the earliest sleeper's deadline.
/// So pacing, back-off and refreshes take no real time, a request's answer always arrives at the
/// instant it left, and every instant of simulated time is one the test chose to reach.
///
/// The whole run has a real-time limit (`timeout`); the driver ends when `body` returns.
public func withSimulatedTime<T: Sendable>(
    on clock: ManualClock, timeout: Duration = .seconds(120), busy: @escaping @Sendable () -> Bool,
    _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withTimeout(timeout, what) {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !Task.isCancelled {
                    let before = (clock.sleepsStarted, clock.sleeperCount)
                    if !busy(), before.1 > 0 {
                        for _ in 0..<20 { await Task.yield() }
                        try await Task.sleep(for: .milliseconds(1))
                        if !busy(), (clock.sleepsStarted, clock.sleeperCount) == before {
                            clock.advanceToNextDeadline()
                            continue
                        }
                    }
                    try await Task.sleep(for: .milliseconds(1))
                }
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }
}
