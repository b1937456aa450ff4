public import CallRecordAPI

/// What became of a mint decision.
public enum MintDecision: Sendable, Hashable {
    /// A mint may happen now (and must be recorded in the ledger in the same critical section).
    case allowed
    /// The budget is used up; the next mint becomes possible at `nextAt` (epoch ms).
    case refused(nextAt: Int64)
}

/// The rolling mint budget shared by every instance: at most `budget` mints in any window.
public struct MintBudget: Sendable, Hashable {
    /// Mints allowed per window. Default 10.
    public var budget: Int
    /// The window in ms. Default 1,800,000.
    public var windowMs: Int64

    /// A budget of `budget` mints per `windowMs`.
    public init(budget: Int = 10, windowMs: Int64 = 1_800_000) {
        self.budget = budget
        self.windowMs = windowMs
    }

    /// Decides from the ledger's mint instants (failed mints included) whether one more mint at
    /// `now` stays within the budget; a mint at `m` counts while `now < m + windowMs`, and so
    /// does a mint recorded at a later instant than `now` (another instance's clock may run ahead).
    public func decide(recentMints: [Int64], now: Int64) -> MintDecision {
        let inWindow = recentMints.filter { $0 > now - windowMs }.sorted()
        if inWindow.count < budget { return .allowed }
        // The (count − budget + 1)-th oldest must leave the window first.
        let leaving = inWindow[inWindow.count - budget]
        return .refused(nextAt: leaving + windowMs)
    }
}
