import CLibPQ

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

    /// Removes the password and any URL userinfo from a message before it is shown.
    static func redact(_ message: String, conninfo: String) -> String {
        var text = message
        if let password = parse(conninfo)["password"], !password.isEmpty {
            text = text.replacingAll(password, with: "***")
        }
        return text
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
        var options = Self.parse(conninfo)
        options["dbname"] = name
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
