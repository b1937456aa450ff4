/// Every failure of the `Postgres` module: a code plus the context PostgreSQL reported.
///
/// `description` is safe to log: it never contains SQL text, parameter values, connection
/// strings or passwords — only the server's own message, its SQLSTATE and the names of the
/// objects involved.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case connectionFailed = "connection failed"
            case connectionLost = "connection lost"
            case server = "server error"
            case decoding = "decoding error"
            case encoding = "encoding error"
            case poolClosed = "pool closed"
            case protocolViolation = "unexpected result"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server could not be reached or refused the login.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke while in use.
        public static let connectionLost = Code(.connectionLost)
        /// The server executed the statement and reported an error (see `sqlState`).
        public static let server = Code(.server)
        /// A column could not be decoded into the requested Swift type.
        public static let decoding = Code(.decoding)
        /// A parameter could not be encoded.
        public static let encoding = Code(.encoding)
        /// The pool was shut down.
        public static let poolClosed = Code(.poolClosed)
        /// libpq returned something the module did not expect.
        public static let protocolViolation = Code(.protocolViolation)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// Five-character SQLSTATE, e.g. `23505`, when the server reported one.
    public var sqlState: String?
    /// The server's primary message, or the module's own explanation.
    public var message: String
    public var detail: String?
    public var hint: String?
    public var schema: String?
    public var table: String?
    public var column: String?
    public var constraint: String?
    /// For connection errors: where we tried to connect (never the password).
    public var endpoint: String?

    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        schema: String? = nil, table: String? = nil, column: String? = nil, constraint: String? = nil,
        endpoint: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.schema = schema
        self.table = table
        self.column = column
        self.constraint = constraint
        self.endpoint = endpoint
    }

    /// True for failures where the connection itself is unusable (reconnect and retry later).
    public var isConnectionProblem: Bool {
        if code == .connectionFailed || code == .connectionLost { return true }
        // Class 08 (connection exception), 57P0x (admin shutdown, crash shutdown, cannot connect now).
        guard let state = sqlState else { return false }
        return state.hasPrefix("08") || state.hasPrefix("57P")
    }

    public var description: String {
        var text = ""
        if let endpoint { text += "\(code) (\(endpoint)): " } else { text += "\(code): " }
        text += message
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let constraint { text += " (constraint \(constraint))" }
        if let detail { text += " — \(detail)" }
        if let hint { text += " Hint: \(hint)" }
        return text
    }
}
