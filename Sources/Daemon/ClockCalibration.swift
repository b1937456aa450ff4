import Foundation
public import Logging
import Metrics
public import Planning
public import Postgres
public import ServiceLifecycle
import Store

/// Keeps the daemon's `CalibratedClock` on the database's time: three readings at start and
/// every `intervalMs` (default 5 minutes), the one with the shortest round trip winning. A
/// failed reading keeps the last offset (logged once per outage). The offset is exported as
/// `callwindow_clock_offset_ms` (database minus host).
public struct ClockCalibration: Service {
    let clock: CalibratedClock
    let database: PostgresPool
    let intervalMs: Int64
    let logger: Logger

    /// A calibration of `clock` against `database` every `intervalMs`.
    public init(clock: CalibratedClock, database: PostgresPool, intervalMs: Int64 = 300_000, logger: Logger) {
        self.clock = clock
        self.database = database
        self.intervalMs = intervalMs
        self.logger = logger
    }

    /// Calibrates once now; returns whether it could read the database's clock.
    @discardableResult
    public func calibrate() async -> Bool {
        var samples: [CalibratedClock.Sample] = []
        for _ in 0..<3 {
            guard let sample = try? await ClockStore.sample(clock.raw, on: database) else { break }
            samples.append(sample)
        }
        guard !samples.isEmpty else { return false }
        let previous = clock.offset
        let offset = clock.calibrate(samples)
        Gauge(label: "callwindow_clock_offset_ms").record(offset)
        if abs(offset - previous) >= 1_000 {
            logger.notice("clock calibrated to the database", metadata: ["offset_ms": "\(offset)", "previous_ms": "\(previous)"])
        }
        return true
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do { try await clock.raw.sleep(milliseconds: intervalMs) } catch { return }
                let ok = await calibrate()
                if !ok, !failing { logger.warning("cannot read the database's clock; keeping the last offset", metadata: ["offset_ms": "\(clock.offset)"]) }
                failing = !ok
            }
        }
    }
}
