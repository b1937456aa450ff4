/// Failures of the `Store` module that are not plain database errors: a migration folder
/// that cannot be read, an applied migration that was edited, a schema newer than this build.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case migrationsUnreadable = "migrations unreadable"
            case migrationChanged = "migration changed"
            case migrationUnknown = "unknown migration"
            case notFound = "not found"
            case invalidData = "invalid data"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        public static let migrationsUnreadable = Code(.migrationsUnreadable)
        public static let migrationChanged = Code(.migrationChanged)
        public static let migrationUnknown = Code(.migrationUnknown)
        public static let notFound = Code(.notFound)
        public static let invalidData = Code(.invalidData)
        public var description: String { base.rawValue }
    }

    public var code: Code
    /// One sentence: what is wrong, where, and how to fix it.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
