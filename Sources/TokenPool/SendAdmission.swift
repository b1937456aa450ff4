/// The owner's say over `TokenPool.send`'s records: before a round of attempts the pool asks
/// which of the records it is about to attempt may still be, and withdraws the others. The pool
/// asks once per round, for every record about to go out whose last check is more than
/// `TokenPool.admissionMaxAgeMs` old, so no record is attempted on a check older than that.
///
/// The dispatcher answers from the database (one set query per round: campaign status, removed
/// callers and receivers, static labels, do-not-contact); the pool itself stays database-free.
public protocol SendAdmission: Sendable {
    /// Of the records at `indices` (positions in the array given to `send`), those that may not
    /// be attempted, each with the reason it is withdrawn. An empty answer admits them all.
    func withdrawals(of indices: [Int]) async -> [Int: String]
}
