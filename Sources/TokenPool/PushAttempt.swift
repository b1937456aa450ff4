public import CallRecordAPI
public import Foundation

/// One HTTP attempt for one or more records (a batch attempt lists all its records).
public struct PushAttempt: Sendable, Hashable {
    /// Indices (in the `send` input) of the records this attempt carried.
    public var recordIndices: [Int]
    /// Fingerprint of the token used.
    public var tokenFingerprint: String
    /// HTTP status, `nil` when no answer came (reset, timeout).
    public var httpStatus: Int?
    /// What the attempt gave; for a batch, the request's outcome (each record's own result, read
    /// from the polled status, is its entry in the array `send` returns).
    public var outcome: PushOutcome
    /// When the request started (epoch ms).
    public var startedAt: Int64
    /// How long it took (ms).
    public var latencyMs: Int64
    /// The batch id, for batch attempts.
    public var batchID: UUID?
    /// For an accepted batch, each record's own outcome from the polled status, in the order of
    /// `recordIndices` (an undecided one is transient); `nil` otherwise.
    public var recordOutcomes: [PushOutcome]?
}
