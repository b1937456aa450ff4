/// Statements that must finish even though their task was cancelled: the results of attempts
/// already made, written at shutdown after the grace period. Inside `PostgresShield.run`, task
/// cancellation neither sends the server a cancel request nor abandons a wait for a pooled
/// connection; connection timeouts still apply, and a statement whose task was cancelled is not
/// waited on for more than 5 s (`PostgresConnection.cancelAnswerLimit`): its connection, silent
/// that long, is severed, so a shielded statement cannot hang on a dead connection.
public enum PostgresShield {
    @TaskLocal static var active = false

    /// Whether the current task runs shielded statements.
    public static var isActive: Bool { active }

    /// Runs `body` with cancellation ignored by every statement and pool wait it makes.
    public static func run<T>(_ body: () async throws -> T) async rethrows -> T {
        try await $active.withValue(true) { try await body() }
    }
}
