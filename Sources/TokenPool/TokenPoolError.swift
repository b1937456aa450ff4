/// Failures of the token pool: bad options, a missing or malformed token key, no token to be had.
/// `description` never contains a token, an API key or the token key.
public struct TokenPoolError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidOptions = "invalid options"
            case tokenKey = "token key"
            case noToken = "no token"
            case shutDown = "shut down"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// Options that cannot work (e.g. `tokens.max` above what the mint budget sustains).
        public static let invalidOptions = Code(.invalidOptions)
        /// The token encryption key is missing or malformed.
        public static let tokenKey = Code(.tokenKey)
        /// No token could be leased or minted.
        public static let noToken = Code(.noToken)
        /// The pool was shut down.
        public static let shutDown = Code(.shutDown)
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// One sentence: what is wrong and how to fix it.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
