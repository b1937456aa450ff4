public import CallRecordAPI

/// A deterministic pseudo-random source for back-off jitter (SplitMix64), injectable in tests.
public struct JitterSource: Sendable {
    private var state: UInt64

    /// A source seeded with `seed`; the same seed gives the same jitter.
    public init(seed: UInt64) {
        state = seed
    }

    /// A value in `[0, 1)`.
    public mutating func nextUnit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(UInt64(1) << 53)
    }
}
