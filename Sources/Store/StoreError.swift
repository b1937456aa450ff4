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
            case inUse = "in use"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The migrations folder or a file in it cannot be read, or a file's name or number is malformed or
        /// taken twice.
        public static let migrationsUnreadable = Code(.migrationsUnreadable)
        /// An applied migration's file no longer matches the checksum the database recorded.
        public static let migrationChanged = Code(.migrationChanged)
        /// The database has a migration applied that this build does not know (a newer CallWindow migrated
        /// it).
        public static let migrationUnknown = Code(.migrationUnknown)
        /// A requested campaign does not exist.
        public static let notFound = Code(.notFound)
        /// Stored or supplied data is unusable: an unknown state or status word, a bad token key, a token
        /// that cannot be decrypted.
        public static let invalidData = Code(.invalidData)
        /// The rows are being worked on right now (e.g. a record is being sent); try again shortly.
        public static let inUse = Code(.inUse)
        /// The code's fixed phrase, e.g. `not found`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// One sentence: what is wrong, where, and how to fix it.
    public var message: String

    /// An error of kind `code`, shown to people as `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message alone (the code is not repeated).
    public var description: String { message }
}
