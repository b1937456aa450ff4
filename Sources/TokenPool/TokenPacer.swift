public import CallRecordAPI

/// The GCRA limiter of one token plus its sliding guard and its 429 adaptation.
public struct TokenPacer: Sendable {
    /// Requests allowed per window.
    public let limit: Int
    /// The window in ms.
    public let windowMs: Int64
    /// Current share of the nominal rate (1 = full rate), lowered by 429s.
    public private(set) var rateFactor: Double = 1
    /// GCRA's theoretical arrival time: the earliest instant of the next grant (ms, fractional).
    private var theoreticalArrival: Double = -.infinity
    /// Sends whose safe instant may still fall in a window: (safe instant, send id), sorted by
    /// safe instant; in-flight sends (`Int64.max`) at the end.
    private var recent: [(safe: Int64, id: UInt64)] = []
    private var nextSendID: UInt64 = 0
    /// No grant before this instant (Retry-After).
    private var blockedUntil: Int64 = .min
    private var lastAdjustment: Int64 = .min

    /// A pacer allowing `limit` requests in any window of `windowMs`.
    public init(limit: Int, windowMs: Int64) {
        self.limit = max(1, limit)
        self.windowMs = max(1, windowMs)
    }

    /// The nominal emission interval W / limit in ms.
    public var nominalIntervalMs: Double { Double(windowMs) / Double(limit) }

    /// The earliest instant (≥ `now`) a request may be granted, or `nil` while an in-flight
    /// request keeps the sliding guard closed (the answer will reopen it).
    public func earliestGrant(now: Int64) -> Int64? {
        var earliest = max(now, blockedUntil)
        if theoreticalArrival.isFinite {
            earliest = max(earliest, Int64(theoreticalArrival.rounded(.up)))
        }
        if recent.count >= limit {
            // The limit-th latest safe instant must have left the window (t − W, t].
            let pivot = recent[recent.count - limit].safe
            if pivot == .max { return nil }
            earliest = max(earliest, pivot + windowMs)
        }
        return earliest
    }

    /// No grant before `instant` (a token taken over from another holder).
    public mutating func hold(until instant: Int64) {
        blockedUntil = max(blockedUntil, instant)
    }

    /// Records a grant at `now` (which must be ≥ `earliestGrant(now:)`); returns the send's id
    /// for `completed(send:at:)`.
    public mutating func grant(now: Int64) -> UInt64 {
        recover(now: now)
        let interval = nominalIntervalMs / rateFactor
        // A grant less than one interval late (timer slack) keeps the schedule, so lateness is
        // not lost; after an idle period the schedule restarts at `now` (no burst). The sliding
        // guard, not GCRA, is what bounds every window.
        let late = Double(now) - theoreticalArrival
        theoreticalArrival = (late < interval ? theoreticalArrival : Double(now)) + interval
        nextSendID += 1
        prune(now: now)
        recent.append((safe: .max, id: nextSendID))
        return nextSendID
    }

    /// Send `id` ended at `now`. Answered, its safe instant becomes `now`: the server counted it
    /// at the latest when it answered. Unanswered (a timeout, a reset), the server may still read
    /// it after the client gave up, so it keeps counting for one more window: safe at `now + W`.
    public mutating func completed(send id: UInt64, at now: Int64, answered: Bool = true) {
        guard let index = recent.lastIndex(where: { $0.id == id }) else { return }
        recent.remove(at: index)
        let safe = answered ? now : now + windowMs
        // Insert in order; answers mostly arrive in order, so this scans from the end briefly.
        var position = recent.count
        while position > 0, recent[position - 1].safe > safe {
            position -= 1
        }
        recent.insert((safe: safe, id: id), at: position)
        prune(now: now)
    }

    /// Drops sends that can no longer be inside any window at or after `now`.
    private mutating func prune(now: Int64) {
        var drop = 0
        while drop < recent.count, recent[drop].safe != .max, recent[drop].safe <= now - windowMs {
            drop += 1
        }
        if drop > 0 { recent.removeFirst(drop) }
    }

    /// A 429 at `now`: multiplicative decrease, and a pause until `Retry-After` when given.
    public mutating func rateLimited(now: Int64, retryAfterMs: Int64?, decreaseFactor: Double, minimumFactor: Double) {
        recover(now: now)
        rateFactor = max(minimumFactor, rateFactor * decreaseFactor)
        lastAdjustment = now
        // The next grant waits at least one (slowed) interval from now.
        theoreticalArrival = max(theoreticalArrival, Double(now) + nominalIntervalMs / rateFactor)
        if let retryAfterMs, retryAfterMs > 0 {
            blockedUntil = max(blockedUntil, now + retryAfterMs)
        }
    }

    /// Additive recovery: `recoveryPerSecond` per second since the last adjustment.
    var recoveryPerSecond: Double = 0.1

    private mutating func recover(now: Int64) {
        guard rateFactor < 1, lastAdjustment != .min, now > lastAdjustment else {
            if rateFactor >= 1 { lastAdjustment = now }
            return
        }
        rateFactor = min(1, rateFactor + recoveryPerSecond * Double(now - lastAdjustment) / 1000)
        lastAdjustment = now
    }

    /// Requests in flight.
    public var inFlight: Int {
        var count = 0
        for entry in recent.reversed() {
            guard entry.safe == .max else { break }
            count += 1
        }
        return count
    }
}
