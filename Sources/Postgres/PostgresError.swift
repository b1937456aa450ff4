/// Every failure of the `Postgres` module: a code plus the context PostgreSQL reported.
///
/// `description` is safe to print and log: the code, what the caller was doing (`context`), a
/// fixed phrase for the SQLSTATE, the SQLSTATE and the constraint — never SQL text, parameter
/// values, connection strings, passwords, nor the server's message, detail or hint, which can
/// quote row values. Those are in `message`, `detail` and `hint`, and together in
/// `debugDescription`, for debug-level logs and for code that shows a message the schema wrote
/// for people (its constraints' own words). The module's own messages (connection failures,
/// decoding errors) are written to be safe and are part of `description`.
public struct PostgresError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
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

        /// The code's fixed phrase, e.g. `connection failed`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// Five-character SQLSTATE, e.g. `23505`, when the server reported one.
    public var sqlState: String?
    /// The server's primary message, or the module's own explanation.
    public var message: String
    /// The server's DETAIL field; may quote row values, so it is kept out of `description`.
    public var detail: String?
    /// The server's HINT field; kept out of `description`.
    public var hint: String?
    /// The schema of the object the error concerns, when the server reported it.
    public var schema: String?
    /// The table the error concerns, when the server reported it.
    public var table: String?
    /// The column the error concerns: reported by the server, or the column that failed to decode.
    public var column: String?
    /// The violated constraint's name, when the server reported it; shown in `description`.
    public var constraint: String?
    /// For connection errors: where we tried to connect (never the password).
    public var endpoint: String?
    /// What the caller was doing, e.g. `migration 002_tokens.sql`; shown first in `description`.
    public var context: String?

    /// An error with the given code, message and whatever server fields are known; `context` starts unset.
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

    /// True for a server error that running the same statement again cannot fix: bad data
    /// (class 22), a broken constraint (23), a statement the server refuses (42), a program limit
    /// (54). Connection problems, serialization failures, lock timeouts and shutdowns are not.
    public var isPermanent: Bool {
        guard code == .server, let state = sqlState else { return false }
        return ["22", "23", "42", "54"].contains(String(state.prefix(2)))
    }

    /// True when the server refused because what the statement needs is busy (SQLSTATE 55P03,
    /// lock not available): the same statement may succeed a little later.
    public var isLockUnavailable: Bool { code == .server && sqlState == "55P03" }

    /// Safe to log: context, code, endpoint, a fixed phrase for the SQLSTATE (server errors) or the
    /// module's own message, the SQLSTATE and the constraint.
    public var description: String {
        var text = context.map { "\($0) failed: " } ?? ""
        if let endpoint { text += "\(code) (\(endpoint)): " } else { text += "\(code): " }
        text += code == .server ? Self.summary(of: sqlState) : message
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let constraint { text += " (constraint \(constraint))" }
        return text
    }

    /// `description` plus the server's message, detail and hint: may quote row values, so for
    /// debug-level logs only.
    public var debugDescription: String {
        var text = description
        if code == .server { text += " — \(message)" }
        if let detail { text += " — \(detail)" }
        if let hint { text += " Hint: \(hint)" }
        return text
    }

    /// A fixed phrase for a SQLSTATE (its class where the code itself has none): what kind of
    /// failure the server reported, in words that can never hold data.
    static func summary(of sqlState: String?) -> String {
        guard let state = sqlState else { return "the server reported an error" }
        switch state {
        case "23505": return "unique violation"
        case "23503": return "foreign key violation"
        case "23502": return "not-null violation"
        case "23514": return "check violation"
        case "42501": return "permission denied (the role lacks a privilege)"
        case "42P01": return "undefined table"
        case "42703": return "undefined column"
        case "42883": return "undefined function"
        case "42601": return "syntax error"
        case "57014": return "statement cancelled"
        case "40001": return "serialization failure"
        case "40P01": return "deadlock detected"
        case "25P02": return "the transaction was aborted by an earlier error"
        case "3F000": return "undefined schema"
        case "55P03": return "lock not available"
        case "P0001": return "raised by a function"
        default: break
        }
        switch state.prefix(2) {
        case "08": return "connection exception"
        case "22": return "data exception"
        case "23": return "integrity constraint violation"
        case "25": return "invalid transaction state"
        case "28": return "invalid authorization"
        case "40": return "transaction rollback"
        case "42": return "syntax error or access rule violation"
        case "53": return "insufficient resources"
        case "54": return "program limit exceeded"
        case "57": return "operator intervention"
        case "58": return "system error"
        case "XX": return "internal error"
        default: return "the server reported an error"
        }
    }
}
