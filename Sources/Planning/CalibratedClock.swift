import Synchronization

/// A clock that agrees with a reference clock — the database's, which every instance sharing it
/// reads alike — so leases, rescue, token expiry and the mint ledger mean the same instant in
/// every process whatever their hosts' clocks say. It reads the raw clock plus an offset
/// measured against the reference (`calibrate`); sleeping converts the deadline back to the raw
/// clock. Injected like any `WallClock`, so a simulation calibrates a `ManualClock` too.
public final class CalibratedClock: WallClock {
    /// One reading of the reference: raw instants just before and just after, and the
    /// reference's instant in between.
    public struct Sample: Sendable, Equatable {
        /// The raw clock just before the reference was read.
        public var before: Int64
        /// The reference's instant.
        public var reference: Int64
        /// The raw clock just after the answer.
        public var after: Int64

        /// A reading.
        public init(before: Int64, reference: Int64, after: Int64) {
            self.before = before
            self.reference = reference
            self.after = after
        }

        /// How long the reading took on the raw clock.
        public var roundTrip: Int64 { max(0, after - before) }

        /// The reference minus the raw clock, assuming the reference was read halfway.
        public var offset: Int64 { reference - (before + (after - before) / 2) }
    }

    /// The clock it corrects.
    public let raw: any WallClock
    private let offsetMs = Atomic<Int64>(0)

    /// A clock reading `raw` until the first calibration (offset 0).
    public init(raw: any WallClock) {
        self.raw = raw
    }

    /// The reference minus the raw clock, in ms, as last calibrated.
    public var offset: Int64 { offsetMs.load(ordering: .relaxed) }

    /// The offset the readings give: that of the one with the shortest round trip (its midpoint
    /// is the least uncertain); `nil` without a reading.
    public static func offset(of samples: [Sample]) -> Int64? {
        samples.min { ($0.roundTrip, $0.before) < ($1.roundTrip, $1.before) }?.offset
    }

    /// Calibrates to the best of `samples`; returns the new offset (unchanged without samples).
    @discardableResult
    public func calibrate(_ samples: [Sample]) -> Int64 {
        if let offset = Self.offset(of: samples) { offsetMs.store(offset, ordering: .relaxed) }
        return offset
    }

    public func now() -> Int64 {
        raw.now() + offset
    }

    public func sleep(until deadline: Int64) async throws {
        try await raw.sleep(until: deadline - offset)
    }

    public func sleepIgnoringCancellation(until deadline: Int64) async {
        await raw.sleepIgnoringCancellation(until: deadline - offset)
    }
}
