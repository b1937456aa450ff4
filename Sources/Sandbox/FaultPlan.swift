/// The fault a push request gets.
enum Fault: Sendable, Hashable {
    /// Answered normally.
    case none
    /// Answered with this 5xx status; the record is not applied.
    case serverError(status: Int)
    /// The connection is closed without an answer; the record is not applied.
    case reset
    /// The record is applied (and recorded), but the answer never comes.
    case timeout
}

/// Decides faults deterministically: the n-th admitted push request of a sandbox run gets the
/// same fault and latency for the same seed, whatever the timing. Draws come from SplitMix64
/// over `(seed, n)`, so no state is shared between requests beyond the counter.
///
/// Latency is piecewise linear in the draw: 0…p50 for the lower half, p50…p99 up to the 99th
/// percentile, p99…2·p99 above — so p50 and p99 are exactly the configured values.
struct FaultPlan: Sendable {
    let faults: SandboxConfiguration.Faults
    /// Epoch ms at which the sandbox started: storms are counted from it.
    let startedAt: Int64

    /// The fault and added latency (ms) of the `sequence`-th admitted push.
    func draw(sequence: UInt64) -> (fault: Fault, latencyMs: Int64) {
        var state = faults.seed &+ sequence &* 0x9E37_79B9_7F4A_7C15
        let kindDraw = Self.unit(Self.next(&state))
        let statusDraw = Self.next(&state)
        let latencyDraw = Self.unit(Self.next(&state))
        let fault: Fault
        if kindDraw < faults.errorRate {
            fault = .serverError(status: statusDraw & 1 == 0 ? 500 : 503)
        } else if kindDraw < faults.errorRate + faults.resetRate {
            fault = .reset
        } else if kindDraw < faults.errorRate + faults.resetRate + faults.timeoutRate {
            fault = .timeout
        } else {
            fault = .none
        }
        return (fault, latency(latencyDraw))
    }

    /// Whether `now` falls inside a rate-limit storm: storms start `every` seconds after start-up
    /// and then every `every` seconds, each lasting `lasting` seconds.
    func inStorm(now: Int64) -> Bool {
        let every = faults.stormEverySeconds * 1000
        let lasting = faults.stormLastingSeconds * 1000
        guard every > 0, lasting > 0 else { return false }
        let elapsed = now - startedAt
        return elapsed >= every && elapsed % every < lasting
    }

    private func latency(_ u: Double) -> Int64 {
        let p50 = Double(faults.latencyP50Ms)
        let p99 = Double(faults.latencyP99Ms)
        guard p99 > 0 else { return 0 }
        let value: Double
        if u < 0.5 {
            value = p50 * u / 0.5
        } else if u < 0.99 {
            value = p50 + (p99 - p50) * (u - 0.5) / 0.49
        } else {
            value = p99 + p99 * (u - 0.99) / 0.01
        }
        return Int64(value.rounded())
    }

    private static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func unit(_ value: UInt64) -> Double {
        Double(value >> 11) / Double(UInt64(1) << 53)
    }
}
