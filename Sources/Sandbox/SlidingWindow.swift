/// The instants of admitted events inside the half-open window `(now - length, now]`, kept in a
/// ring buffer: admitting is O(1) amortised, and the memory is the number of events in one window.
///
/// A limit of `n` refuses an event at `t` exactly when `n` events were admitted in `(t - length, t]`.
struct SlidingWindow: Sendable {
    /// Window length in ms.
    let length: Int64
    private var ring: [Int64]
    private var head = 0
    private(set) var count = 0

    init(length: Int64, capacity: Int = 8) {
        self.length = length
        self.ring = Array(repeating: 0, count: max(1, capacity))
    }

    /// Drops instants that are no longer inside `(now - length, now]`.
    mutating func prune(now: Int64) {
        while count > 0, ring[head] <= now - length {
            head = (head + 1) % ring.count
            count -= 1
        }
    }

    /// Events admitted in `(now - length, now]` (prunes first).
    mutating func count(at now: Int64) -> Int {
        prune(now: now)
        return count
    }

    /// Admits an event at `now` unless `limit` events are already inside the window; returns
    /// whether it was admitted. `now` must not go backwards (the caller clamps it).
    mutating func admit(at now: Int64, limit: Int?) -> Bool {
        prune(now: now)
        if let limit, count >= limit { return false }
        append(now)
        return true
    }

    private mutating func append(_ instant: Int64) {
        if count == ring.count {
            // Grow: unroll the ring into a buffer twice as large.
            var grown = [Int64](repeating: 0, count: ring.count * 2)
            for offset in 0..<count {
                grown[offset] = ring[(head + offset) % ring.count]
            }
            ring = grown
            head = 0
        }
        ring[(head + count) % ring.count] = instant
        count += 1
    }
}
