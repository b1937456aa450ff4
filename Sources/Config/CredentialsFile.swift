public import Foundation
import Yams
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One client account's API key pair as the credentials file or the environment gives it.
/// `apiKey` is a secret: `description`, `debugDescription` and reflection show the key id only.
public struct AccountCredential: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The key's public id (`key_id`).
    public let keyID: UUID
    /// The secret (`api_key`).
    public let apiKey: String

    /// A key pair.
    public init(keyID: UUID, apiKey: String) {
        self.keyID = keyID
        self.apiKey = apiKey
    }

    public var description: String { "API key \(keyID.uuidString.lowercased())" }
    public var debugDescription: String { "AccountCredential(keyID: \(keyID.uuidString.lowercased()), apiKey: <redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": keyID]) }
}

/// The credentials file (`credentials_file:`): one entry per client account, keyed by its
/// `client_account_id`, with the API key id and key:
///
/// ```yaml
/// 6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10:
///   key_id: 1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0
///   api_key: "…"
/// ```
///
/// It is refused unless it is a regular file of mode 0600 (read and written by its owner only).
/// No error ever quotes the file's text: problems are reported by line and column, and only the
/// account ids (which are not secret) are named.
public struct CredentialsFile: Sendable {
    /// One account's entry and the line it starts on.
    public struct Entry: Sendable, Equatable {
        /// The account's key pair.
        public let credential: AccountCredential
        /// Line of the file the entry starts on (from 1).
        public let line: Int
    }

    /// Where the file was read from.
    public let path: String
    /// The entries by client account.
    public let entries: [UUID: Entry]

    /// The only mode the file may have.
    public static let requiredMode: mode_t = 0o600

    /// Reads and checks the file at `path`: it must exist, be a regular file of mode 0600, and
    /// hold valid entries. The mode is checked on the open file itself, so the file checked is
    /// the file read.
    public static func load(path: String) throws(ConfigurationError) -> CredentialsFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno == ENOENT ? "does not exist" : "cannot be opened: \(String(cString: strerror(errno)))"
            throw ConfigurationError("the credentials file \(path) \(reason) (credentials_file in the configuration)", key: "credentials_file")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw ConfigurationError("the credentials file \(path) cannot be examined: \(String(cString: strerror(errno)))", key: "credentials_file")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw ConfigurationError("the credentials file \(path) is not a regular file", key: "credentials_file")
        }
        let mode = status.st_mode & 0o7777
        guard mode == requiredMode else {
            throw ConfigurationError(
                "the credentials file \(path) has mode \(octal(mode)); it must be 0600 (read and written by its owner only): chmod 600 \(path)",
                key: "credentials_file")
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError("the credentials file \(path) cannot be read: \(String(cString: strerror(errno)))", key: "credentials_file")
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError("the credentials file \(path) is not UTF-8 text", key: "credentials_file")
        }
        return try parse(text, path: path)
    }

    /// Parses the file's text (`path` only names it in errors).
    public static func parse(_ text: String, path: String) throws(ConfigurationError) -> CredentialsFile {
        func fail(_ message: String) -> ConfigurationError {
            ConfigurationError("the credentials file \(path): \(message)", key: "credentials_file")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            // Yams' own description quotes the text around the problem (or all of it), which
            // may hold a key: only its position and libyaml's fixed wording are shown.
            throw ConfigurationError("the credentials file \(path) \(describe(error))", key: "credentials_file")
        } catch {
            throw ConfigurationError("the credentials file \(path) is not valid YAML", key: "credentials_file")
        }
        guard let root else { return CredentialsFile(path: path, entries: [:]) }
        guard let mapping = root.mapping else {
            throw fail("line \(root.mark?.line ?? 1): expected a mapping of client_account_id to {key_id, api_key}")
        }
        var entries: [UUID: Entry] = [:]
        for (key, value) in mapping {
            let line = key.mark?.line ?? 0
            guard let text = key.scalar?.string, let account = UUID(uuidString: text) else {
                throw fail("line \(line): a key is not a client_account_id (a uuid)")
            }
            let name = account.uuidString.lowercased()
            if let first = entries[account] {
                throw fail("line \(line): client account \(name) is listed twice (first on line \(first.line))")
            }
            guard let fields = value.mapping else {
                throw fail("line \(line): client account \(name) must map to key_id and api_key")
            }
            var keyID: UUID?
            var apiKey: String?
            for (field, content) in fields {
                let fieldLine = field.mark?.line ?? line
                switch field.scalar?.string {
                case "key_id"?:
                    guard let id = content.scalar.flatMap({ UUID(uuidString: $0.string) }) else {
                        throw fail("line \(fieldLine): client account \(name): key_id must be the API key id (a uuid)")
                    }
                    keyID = id
                case "api_key"?:
                    guard let secret = content.scalar?.string, !secret.isEmpty else {
                        throw fail("line \(fieldLine): client account \(name): api_key must be the API key (text)")
                    }
                    apiKey = secret
                default:
                    throw fail("line \(fieldLine): client account \(name): unknown key (known keys: api_key, key_id)")
                }
            }
            guard let keyID else { throw fail("line \(line): client account \(name) has no key_id") }
            guard let apiKey else { throw fail("line \(line): client account \(name) has no api_key") }
            entries[account] = Entry(credential: AccountCredential(keyID: keyID, apiKey: apiKey), line: line)
        }
        return CredentialsFile(path: path, entries: entries)
    }

    /// A YAML error without the text it quotes, as the end of a sentence about the file.
    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let during = context.map { " (\($0.text) from line \($0.mark.line))" } ?? ""
            return "is not valid YAML: line \(mark.line), column \(mark.column): \(problem)\(during)"
        case .reader(let problem, _, _, _):
            return "is not valid YAML: \(problem)"
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Only keys that are account ids or field names are safe to name.
            let named = duplicates.filter { UUID(uuidString: $0) != nil || $0 == "key_id" || $0 == "api_key" }
                .map { UUID(uuidString: $0).map { "client account \($0.uuidString.lowercased())" } ?? $0 }
            return "lists a key twice: line \(context.mark.line): \(named.isEmpty ? "a key" : named.joined(separator: ", ")) is listed twice"
        default:
            return "is not valid YAML"
        }
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
