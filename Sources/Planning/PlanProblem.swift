/// One problem the plan of a campaign shows: what kind it is (for code that acts on it) and
/// the sentence a person reads (for the preview, `status` and `campaign_state.problems`).
public struct PlanProblem: Sendable, Hashable, CustomStringConvertible {
    /// What the problem is about.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The campaign is cancelled.
        case cancelled
        /// The campaign is paused.
        case paused
        /// The campaign's rows cannot be planned (unknown zone, bad daily hours, …).
        case unplannable
        /// Found by whoever counted the records (an unknown or non-dynamic label, …).
        case campaignData
        /// No callers and no explicit pairs.
        case noCallers
        /// No receivers and no explicit pairs.
        case noReceivers
        /// Every record is invalid.
        case allRecordsInvalid
        /// Some records are invalid.
        case someRecordsInvalid
        /// The campaign ended before now.
        case ended
        /// Daily hours and weekdays leave no window.
        case noWindows
        /// The campaign ends before it starts.
        case endsBeforeStarts
        /// Some windows cannot be pushed by their deadline at the planned capacity.
        case lateWindows
    }

    /// What the problem is about.
    public var kind: Kind
    /// One sentence for a person.
    public var message: String

    /// A problem of `kind` told by `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
