/// A runtime failure a command reports in one sentence and exits 1 for: the database has no
/// schema, a credential is missing, a client is not configured. (Bad command-line usage is
/// ArgumentParser's, exit 64.) The message never holds a secret.
public struct CallWindowError: Error, CustomStringConvertible, Sendable {
    /// What went wrong and what to do, e.g. "the database has no CallWindow schema: run callwindow migrate first".
    public let message: String

    /// A failure described by `message`.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
