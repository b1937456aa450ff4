/// One push window of a campaign: a span of at most 24 h (the API's limit) during which the
/// receiver sees the personalised call. Instants are epoch milliseconds, `[startsAt, endsAt)`.
public struct Window: Sendable, Hashable, Codable {
    /// The longest window the API accepts: 24 h.
    public static let maximumDuration: Int64 = 86_400_000

    /// Position among the campaign's windows, from 0, in time order.
    public var seq: Int
    /// First instant (inclusive).
    public var startsAt: Int64
    /// End (exclusive).
    public var endsAt: Int64

    /// A window.
    public init(seq: Int, startsAt: Int64, endsAt: Int64) {
        self.seq = seq
        self.startsAt = startsAt
        self.endsAt = endsAt
    }

    /// `endsAt − startsAt` in milliseconds.
    public var duration: Int64 { endsAt - startsAt }
}

/// Where a window stands at a given instant, as the preview and the daemon report it.
public enum WindowState: String, Sendable, Codable, CaseIterable {
    /// Still to be pushed (or being pushed).
    case planned
    /// `endsAt` has passed: never pushed.
    case expired
    /// The campaign was cancelled: never pushed.
    case cancelled
}
