import CallRecordAPI
import Planning
import Synchronization
import TokenPool

/// Attempts counted inside the measuring window.
final class Tally: Sendable {
    private struct Counts {
        var window: (Int64, Int64) = (0, 0)
        var accepted = 0
        var rateLimited = 0
        var errors = 0
        var latencies: [Int64] = []
    }

    private let counts = Mutex(Counts())

    var window: (Int64, Int64) {
        get { counts.withLock { $0.window } }
        set { counts.withLock { $0.window = newValue } }
    }

    @Sendable func record(_ attempt: PushAttempt) {
        let answeredAt = attempt.startedAt + attempt.latencyMs
        counts.withLock { counts in
            // [start, end): requests cut off by the stop at `end` are not counted.
            guard answeredAt >= counts.window.0, answeredAt < counts.window.1 else { return }
            counts.latencies.append(attempt.latencyMs)
            switch attempt.outcome {
            case .accepted: counts.accepted += attempt.recordIndices.count
            case .rateLimited: counts.rateLimited += 1
            default: counts.errors += 1
            }
        }
    }

    func report(tokens: Int, transport: Transport, ceiling: Double?, seconds: Int, cpuSeconds: Double, peakRSSMB: Double) -> BenchReport {
        counts.withLock { counts in
            let sorted = counts.latencies.sorted()
            func percentile(_ p: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)])
            }
            let achieved = Double(counts.accepted) / Double(seconds)
            return BenchReport(
                tokens: tokens, transport: transport.rawValue, ceilingRPS: ceiling, achievedRPS: achieved,
                utilisation: ceiling.map { achieved / $0 }, accepted: counts.accepted, rateLimited: counts.rateLimited,
                errors: counts.errors, p50Ms: percentile(0.5), p99Ms: percentile(0.99),
                cpuSeconds: cpuSeconds, peakRSSMB: peakRSSMB
            )
        }
    }
}

