/// The owner's say over `TokenPool.send`'s records: before a round of attempts the pool asks
/// which of the records it is about to attempt may still be, and withdraws the others. The pool
/// asks once per round, for every record about to go out whose last check is more than
/// `TokenPool.admissionMaxAgeMs` old, so no record is attempted on a check older than that.
///
/// The dispatcher answers from the database (one set query per round: campaign status, removed
/// callers and receivers, static labels, do-not-contact); the pool itself stays database-free.
public protocol SendAdmission: Sendable {
    /// Of the records at `indices` (positions in the array given to `send`), those that may not
    /// be attempted, each with the reason it is withdrawn, and when the owner's state was read.
    /// An empty `withdrawn` admits them all.
    func check(_ indices: [Int]) async -> AdmissionCheck
}

/// One admission check's answer.
public struct AdmissionCheck: Sendable, Equatable {
    /// The records withdrawn: index → the reason to report.
    public var withdrawn: [Int: String]
    /// The instant, on the pool's clock, at which the owner's state was read (a database query
    /// that waited for a connection reads the state of when it ran, not of when it was asked
    /// for). The pool counts the check's age from it, clamped between the moment it asked and
    /// the moment the answer came; `nil` counts from the moment it asked.
    public var checkedAt: Int64?

    public init(withdrawn: [Int: String] = [:], checkedAt: Int64? = nil) {
        self.withdrawn = withdrawn
        self.checkedAt = checkedAt
    }
}
