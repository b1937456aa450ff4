import CLibPQ
import Foundation

/// Where and how to connect: a `postgres://` URL or a libpq `key=value` conninfo string.
///
/// Anything the string leaves out comes from libpq's usual environment variables
/// (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, …); `sslmode` and every other
/// libpq option pass through unchanged.
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    /// The connection string as given. Never printed: it may hold a password.
    var conninfo: String
    /// Seconds libpq waits for a connection before giving up (unless the string sets its own).
    public var connectTimeoutSeconds: Int = 10
    /// Reported to the server as `application_name` (unless the string sets its own).
    public var applicationName: String = "callwindow"
    /// A statement running longer than this is cancelled by the server (`statement_timeout`,
    /// through libpq's `options`, unless the string sets its own options); `nil`: the server's.
    public var statementTimeoutMs: Int?
    /// A session idle (not in a transaction) longer than this is ended by the server
    /// (`idle_session_timeout`, like `statementTimeoutMs`); `nil`: the server's. For a
    /// connection that is never idle that long while its client is alive (the leader's, which
    /// reaches the database at least every heartbeat), this is how the server lets go of a
    /// client it can no longer hear: its session and advisory locks end with it.
    public var idleSessionTimeoutMs: Int?
    /// `false`: the session never compiles a plan to machine code (`jit = off`, like
    /// `statementTimeoutMs`); `nil`: the server's. JIT pays off for long analytical queries; on
    /// short statements whose row estimates are stale it only adds its compile time.
    public var jit: Bool?
    /// A session left idle inside a transaction longer than this is ended by the server
    /// (`idle_in_transaction_session_timeout`, like `statementTimeoutMs`); `nil`: the server's.
    /// A client cut off in the middle of a transaction otherwise keeps its row locks for as long
    /// as the server believes the connection alive.
    public var idleInTransactionTimeoutMs: Int?
    /// A statement whose answer has not arrived this long after it was sent makes the client
    /// sever the connection (`PostgresConnection.sever()`): it then fails with `connectionLost`
    /// instead of waiting on a connection that died without a word (a network or proxy that
    /// black-holes the traffic, which keepalives may never notice). Set it above
    /// `statementTimeoutMs`, by which time a live server has answered, if only with an error;
    /// `nil`: no limit.
    public var answerTimeoutMs: Int?

    /// TCP keepalives and `tcp_user_timeout` that every connection asks for (unless the string
    /// sets its own): a connection whose peer vanished without a FIN or RST (a host or network
    /// gone) fails within about a minute instead of hanging, so a leader that lost the
    /// database gives up its lead in bounded time.
    static let keepalives: [(String, String)] = [
        ("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
        ("tcp_user_timeout", "60000"),
    ]

    /// Wraps a connection string; fails with a clear message when libpq cannot parse it.
    public init(_ conninfo: String) throws(PostgresError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            var message = "the database URL cannot be parsed"
            if let errorMessage {
                message += ": " + String(cString: errorMessage).trimmingTrailingNewlines
                PQfreemem(errorMessage)
            }
            throw PostgresError(code: .connectionFailed, message: Self.redact(message, conninfo: conninfo))
        }
        PQconninfoFree(options)
        self.conninfo = conninfo
    }

    /// `host:port/database` as far as the string says (libpq defaults fill the rest); no password.
    public var endpoint: String {
        let parsed = Self.parse(conninfo)
        let host = parsed["host"] ?? parsed["hostaddr"] ?? "default host"
        let port = parsed["port"] ?? "default port"
        let database = parsed["dbname"] ?? "default database"
        return "\(host):\(port)/\(database)"
    }

    /// `PostgresConfiguration(host:port/database)`; never shows the password.
    public var description: String { "PostgresConfiguration(\(endpoint))" }

    /// The password the string carries, if any (to scrub it from messages).
    var password: String? { Self.parse(conninfo)["password"] }

    static func parse(_ conninfo: String) -> [String: String] {
        guard let options = PQconninfoParse(conninfo, nil) else { return [:] }
        defer { PQconninfoFree(options) }
        var result: [String: String] = [:]
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                result[String(cString: keyword)] = String(cString: value)
            }
            cursor += 1
        }
        return result
    }

    /// Removes every secret the connection string may carry from a message before it is shown:
    /// the password (from a URL's userinfo, a `password=` query parameter or a `password=` keyword,
    /// raw and percent-decoded), and any quoted fragment of the message that overlaps one. The
    /// secrets are found lexically, not by asking libpq to parse the string again: a string libpq
    /// cannot parse is exactly the one whose error message quotes it.
    static func redact(_ message: String, conninfo: String) -> String {
        let secrets = Self.secrets(in: conninfo).filter { !$0.isEmpty }
        guard !secrets.isEmpty else { return message }
        var text = message
        for secret in secrets.sorted(by: { $0.count > $1.count }) {
            text = text.replacingAll(secret, with: "***")
        }
        // A quoted fragment of a secret (libpq quotes the token it choked on): hide it whole.
        var result = ""
        var rest = text[...]
        while let open = rest.firstIndex(of: "\""), let close = rest[rest.index(after: open)...].firstIndex(of: "\"") {
            let quoted = String(rest[rest.index(after: open)..<close])
            result += rest[...open]
            let overlaps = quoted.count >= 3 && secrets.contains { $0.contains(quoted) || quoted.contains($0) || Self.shareRun(quoted, $0) }
            result += overlaps ? "***" : quoted
            result += "\""
            rest = rest[rest.index(after: close)...]
        }
        result += rest
        return result
    }

    /// The password-like values in a URL or keyword/value connection string, found lexically.
    static func secrets(in conninfo: String) -> [String] {
        var found: [String] = []
        let trimmed = conninfo.trimmingCharacters(in: .whitespaces)
        if let schemeEnd = trimmed.range(of: "://"), trimmed.lowercased().hasPrefix("postgres") {
            let rest = trimmed[schemeEnd.upperBound...]
            let query = rest.firstIndex(of: "?").map { rest[rest.index(after: $0)...] }
            let authorityPart = rest[..<(rest.firstIndex(of: "?") ?? rest.endIndex)]
            // Userinfo ends at the last '@' (an unencoded '@' in a password stays inside it).
            if let at = authorityPart.lastIndex(of: "@") {
                let userinfo = authorityPart[..<at]
                if let colon = userinfo.firstIndex(of: ":") {
                    let password = String(userinfo[userinfo.index(after: colon)...])
                    found.append(password)
                    if let decoded = password.removingPercentEncoding { found.append(decoded) }
                }
            }
            for pair in (query ?? "").split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "password" {
                    found.append(String(parts[1]))
                    if let decoded = String(parts[1]).removingPercentEncoding { found.append(decoded) }
                }
            }
        } else {
            // keyword = value pairs; a value may be single-quoted with backslash escapes.
            var rest = trimmed[...]
            while let range = rest.range(of: "password", options: .caseInsensitive) {
                var cursor = range.upperBound
                while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
                guard cursor < rest.endIndex, rest[cursor] == "=" else { rest = rest[range.upperBound...]; continue }
                cursor = rest.index(after: cursor)
                while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
                var value = ""
                if cursor < rest.endIndex, rest[cursor] == "'" {
                    cursor = rest.index(after: cursor)
                    while cursor < rest.endIndex, rest[cursor] != "'" {
                        if rest[cursor] == "\\", rest.index(after: cursor) < rest.endIndex { cursor = rest.index(after: cursor) }
                        value.append(rest[cursor])
                        cursor = rest.index(after: cursor)
                    }
                } else {
                    while cursor < rest.endIndex, rest[cursor] != " " {
                        value.append(rest[cursor])
                        cursor = rest.index(after: cursor)
                    }
                }
                found.append(value)
                rest = rest[cursor...]
            }
        }
        return found
    }

    /// Whether `a` and `b` share a run of at least four characters (a fragment of a secret).
    private static func shareRun(_ a: String, _ b: String) -> Bool {
        let small = Array(a.count <= b.count ? a : b)
        let large = a.count <= b.count ? b : a
        guard small.count >= 4 else { return false }
        for start in 0...(small.count - 4) where large.contains(String(small[start..<(start + 4)])) {
            return true
        }
        return false
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while let last = text.last, last.isNewline || last == " " || last == "\t" { text.removeLast() }
        return text
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

extension PostgresConfiguration {
    /// The same server and credentials, another database.
    public func database(_ name: String) -> PostgresConfiguration {
        changing { $0["dbname"] = name }
    }

    /// This configuration with the parsed connection options changed by `change`, written back
    /// as a keyword/value string.
    func changing(_ change: (inout [String: String]) -> Void) -> PostgresConfiguration {
        var options = Self.parse(conninfo)
        change(&options)
        let conninfo = options.keys.sorted().map { key in
            let value = options[key, default: ""].replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'")
            return "\(key)='\(value)'"
        }.joined(separator: " ")
        var copy = self
        copy.conninfo = conninfo
        return copy
    }
}

extension PostgresConfiguration {
    /// The connection string itself, for tests that hand it to a child process. Contains the
    /// password when there is one: never log it.
    package var conninfoForTests: String { conninfo }
}

extension PostgresConfiguration {
    /// The same database and credentials, reached at `host:port` (a test's proxy).
    package func routed(host: String, port: Int) -> PostgresConfiguration {
        changing { options in
            options["host"] = host
            options["hostaddr"] = nil
            options["port"] = String(port)
        }
    }

    /// Host and port the string names (libpq's defaults where it names none), for a test's proxy.
    package var hostAndPort: (host: String, port: Int) {
        let options = Self.parse(conninfo)
        return (options["hostaddr"] ?? options["host"] ?? "127.0.0.1", Int(options["port"] ?? "") ?? 5432)
    }
}
