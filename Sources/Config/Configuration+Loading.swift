public import Foundation
import Planning
import Yams

/// A configuration problem: one sentence naming the key (or variable) and what is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The key path the problem is about (`tokens.max`), when it is one key's value.
    public var key: String?
    public var description: String { message }
    init(_ message: String, key: String? = nil) {
        self.message = message
        self.key = key
    }
}

extension Configuration {
    /// The environment variable that overrides `path` (`tokens.max` → `CALLWINDOW_TOKENS_MAX`).
    public static func environmentName(for path: String) -> String {
        "CALLWINDOW_" + path.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Loads `path` (YAML) over the defaults, then applies environment overrides. With no file,
    /// the defaults plus the environment. A relative `credentials_file` in the file is made
    /// relative to the file's folder (one from the environment stays relative to the working
    /// directory).
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Configuration {
        var source = "the defaults"
        var user: [String: Any] = [:]
        if let path {
            source = path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("cannot read the configuration file \(path)")
            }
            user = try parse(String(decoding: data, as: UTF8.self), source: path)
        }
        let folder = path.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        return try build(user: user, source: source, folder: folder, environment: environment)
    }

    /// Parses YAML text (used by `load` and tests).
    public static func parse(yaml: String, environment: [String: String] = [:]) throws -> Configuration {
        try build(user: try parse(yaml, source: "the configuration"), source: "the configuration", folder: nil, environment: environment)
    }

    private static func parse(_ yaml: String, source: String) throws -> [String: Any] {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: yaml)
        } catch {
            throw ConfigurationError("\(source) is not valid YAML: \(error)")
        }
        guard let loaded else { return [:] }
        guard let mapping = loaded as? [String: Any] else {
            throw ConfigurationError("\(source) must be a mapping of keys (database:, api:, clients:, …)")
        }
        return mapping
    }

    private static func tree<T: Encodable>(_ value: T) -> [String: Any] {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    private static func build(user: [String: Any], source: String, folder: String?, environment: [String: String]) throws -> Configuration {
        let defaults = tree(Configuration())
        let clientSchema = tree(Client())
        try checkKeys(user, schema: defaults, clientSchema: clientSchema, path: "", source: source)
        var merged = merge(defaults, user)
        // Each client entry takes the client defaults for what it leaves out.
        if let clients = merged["clients"] as? [[String: Any]] {
            merged["clients"] = clients.map { merge(clientSchema, $0) }
        }
        var overridden: [String: String] = [:]
        try applyEnvironment(&merged, schema: defaults, path: "", environment: environment, overridden: &overridden)
        let data = try JSONSerialization.data(withJSONObject: normalise(merged))
        do {
            try checkChoices(merged, source: source)
            let decoded: Configuration
            do {
                decoded = try JSONDecoder().decode(Configuration.self, from: data)
            } catch let error as DecodingError {
                throw ConfigurationError(describe(error, source: source))
            }
            var configuration = decoded
            try configuration.validate(source: source)
            try checkCredentialSource(configuration, user: user, source: source)
            if let folder, overridden["credentials_file"] == nil, !configuration.credentialsFile.isEmpty,
               !configuration.credentialsFile.hasPrefix("/") {
                configuration.credentialsFile = URL(fileURLWithPath: folder, isDirectory: true)
                    .appendingPathComponent(configuration.credentialsFile).standardizedFileURL.path
            }
            return configuration
        } catch let error as ConfigurationError {
            // A bad value set by an environment variable: say so, the file does not hold it.
            if let key = error.key, let name = overridden[key] {
                throw ConfigurationError(error.message + " (the value comes from the environment variable \(name))", key: key)
            }
            throw error
        }
    }

    /// With a credentials file, every client's key comes from it: a client that still names
    /// environment variables is a mistake to point out, not a second source to merge.
    private static func checkCredentialSource(_ configuration: Configuration, user: [String: Any], source: String) throws {
        guard !configuration.credentialsFile.isEmpty, let clients = user["clients"] as? [[String: Any]] else { return }
        for (index, client) in clients.enumerated() where client["key_id_env"] != nil || client["api_key_env"] != nil {
            throw ConfigurationError(
                "\(source): clients[\(index)] names key_id_env or api_key_env, but credentials_file is set: every client's key comes from \(configuration.credentialsFile); remove them",
                key: "clients")
        }
    }

    /// Values with a fixed set of choices, checked before decoding so the message names the key
    /// and the choices (decoding would only say "cannot initialize Transport").
    private static func checkChoices(_ merged: [String: Any], source: String) throws {
        if let transport = (merged["api"] as? [String: Any])?["transport"].map({ "\($0)" }), Transport(rawValue: transport) == nil {
            throw ConfigurationError(
                "\(source): api.transport \"\(transport)\" is not a transport: use v1, v2 or batch", key: "api.transport")
        }
    }

    private static func checkKeys(_ user: [String: Any], schema: [String: Any], clientSchema: [String: Any], path: String, source: String) throws {
        for (key, value) in user {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            guard let expected = schema[key] else {
                let known = schema.keys.sorted().joined(separator: ", ")
                throw ConfigurationError("\(source): unknown key \(keyPath) (known keys\(path.isEmpty ? "" : " under \(path)"): \(known))")
            }
            if let nested = expected as? [String: Any] {
                guard let given = value as? [String: Any] else {
                    throw ConfigurationError("\(source): \(keyPath) must be a mapping with keys \(nested.keys.sorted().joined(separator: ", "))")
                }
                try checkKeys(given, schema: nested, clientSchema: clientSchema, path: keyPath, source: source)
            } else if expected is [Any] {
                guard let items = value as? [Any] else {
                    throw ConfigurationError("\(source): \(keyPath) must be a list")
                }
                for (index, item) in items.enumerated() {
                    guard let entry = item as? [String: Any] else {
                        throw ConfigurationError("\(source): \(keyPath)[\(index)] must be a mapping with keys \(clientSchema.keys.sorted().joined(separator: ", "))")
                    }
                    try checkKeys(entry, schema: clientSchema, clientSchema: clientSchema, path: "\(keyPath)[\(index)]", source: source)
                }
            } else if value is [String: Any] || value is [Any] {
                throw ConfigurationError("\(source): \(keyPath) must be a single value, not a mapping or list")
            }
        }
    }

    private static func merge(_ base: [String: Any], _ over: [String: Any]) -> [String: Any] {
        var result = base
        for (key, value) in over {
            if let nestedBase = base[key] as? [String: Any], let nestedOver = value as? [String: Any] {
                result[key] = merge(nestedBase, nestedOver)
            } else {
                result[key] = value
            }
        }
        return result
    }

    private static func applyEnvironment(_ tree: inout [String: Any], schema: [String: Any], path: String, environment: [String: String],
                                         overridden: inout [String: String]) throws {
        for (key, expected) in schema {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if let nested = expected as? [String: Any] {
                var subtree = tree[key] as? [String: Any] ?? [:]
                try applyEnvironment(&subtree, schema: nested, path: keyPath, environment: environment, overridden: &overridden)
                tree[key] = subtree
                continue
            }
            if expected is [Any] { continue }
            let name = environmentName(for: keyPath)
            guard let text = environment[name] else { continue }
            tree[key] = try coerce(text, like: expected, name: name, keyPath: keyPath)
            overridden[keyPath] = name
        }
    }

    /// Environment values are text; they take the type of the key's default (the file has no
    /// boolean keys yet, so text, whole numbers and decimals cover every key).
    private static func coerce(_ text: String, like expected: Any, name: String, keyPath: String) throws -> Any {
        if expected is String { return text }
        if "\(expected)".contains(".") {
            guard let value = Double(text) else { throw ConfigurationError("\(name)=\(text) is not a number for \(keyPath)") }
            return value
        }
        guard let value = Int(text) else { throw ConfigurationError("\(name)=\(text) is not a whole number for \(keyPath)") }
        return value
    }

    private static func normalise(_ value: Any) -> Any {
        switch value {
        case let mapping as [String: Any]: return mapping.mapValues(normalise)
        case let list as [Any]: return list.map(normalise)
        case let date as Date: return ISO8601DateFormatter().string(from: date)
        default: return value
        }
    }

    private static func describe(_ error: DecodingError, source: String) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
                .joined().replacingOccurrences(of: ".[", with: "[").trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(source): bad value for \(path(context)): expected \(describeType(type))"
        case .valueNotFound(let type, let context):
            return "\(source): \(path(context)) is empty: expected \(describeType(type))"
        case .keyNotFound(let key, let context):
            return "\(source): \(path(context)) is missing key \(key.stringValue)"
        case .dataCorrupted(let context):
            return "\(source): bad value for \(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(source): \(error)"
        }
    }

    private static func describeType(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "a whole number"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is String.Type: "text"
        default: "\(type)"
        }
    }

    /// Range and consistency checks, each naming its key.
    func validate(source: String) throws {
        func check(_ condition: Bool, key: String, _ message: String) throws {
            if !condition { throw ConfigurationError("\(source): \(message)", key: key) }
        }
        try check(URL(string: api.baseURL)?.scheme.map { $0 == "http" || $0 == "https" } == true, key: "api.base_url", "api.base_url \"\(api.baseURL)\" is not an http(s) URL")
        try check(database.poolSize >= 1 && database.poolSize <= 100, key: "database.pool_size", "database.pool_size \(database.poolSize) is out of range: give 1 to 100")
        try check(tokens.max >= 1, key: "tokens.max", "tokens.max \(tokens.max) must be at least 1")
        // With tokens living ttl and mints limited per window, at most budget × ttl / window
        // tokens can be kept valid at once; refreshing early shortens each token's useful life.
        let usefulLife = Double(tokens.ttlSeconds - tokens.refreshBeforeSeconds)
        let sustainable = Int(Double(tokens.mintBudget) * usefulLife / Double(max(1, tokens.mintWindowSeconds)))
        try check(tokens.max <= sustainable, key: "tokens.max",
                  "tokens.max \(tokens.max) cannot be sustained: \(tokens.mintBudget) mints per \(tokens.mintWindowSeconds) s keep at most \(sustainable) tokens of \(tokens.ttlSeconds) s (refreshed \(tokens.refreshBeforeSeconds) s early) valid; lower tokens.max")
        try check(tokens.refreshBeforeSeconds >= 0 && tokens.refreshBeforeSeconds < tokens.ttlSeconds, key: "tokens.refresh_before_seconds", "tokens.refresh_before_seconds must be between 0 and tokens.ttl_seconds")
        try check(tokens.leaseSeconds >= 3, key: "tokens.lease_seconds", "tokens.lease_seconds \(tokens.leaseSeconds) is too short: give at least 3")
        try check(tokens.maxInFlight >= 1, key: "tokens.max_in_flight", "tokens.max_in_flight must be at least 1")
        try check(scheduler.utilisation > 0 && scheduler.utilisation <= 1, key: "scheduler.utilisation", "scheduler.utilisation \(scheduler.utilisation) must be above 0 and at most 1")
        try check(scheduler.claimBatch >= 1 && scheduler.claimBatch <= 10_000, key: "scheduler.claim_batch", "scheduler.claim_batch \(scheduler.claimBatch) is out of range: give 1 to 10000")
        try check(scheduler.concurrentBatches >= 1 && scheduler.concurrentBatches <= 8, key: "scheduler.concurrent_batches", "scheduler.concurrent_batches \(scheduler.concurrentBatches) is out of range: give 1 to 8")
        try check(scheduler.pushMarginSeconds >= 0 && scheduler.pushMarginSeconds <= 3_600, key: "scheduler.push_margin_seconds", "scheduler.push_margin_seconds \(scheduler.pushMarginSeconds) is out of range: give 0 to 3600")
        try check(scheduler.graceSeconds >= 1, key: "scheduler.grace_seconds", "scheduler.grace_seconds must be at least 1")
        try check(scheduler.horizonSeconds >= 60, key: "scheduler.horizon_seconds", "scheduler.horizon_seconds must be at least 60")
        try check(scheduler.pollSeconds >= 1, key: "scheduler.poll_seconds", "scheduler.poll_seconds must be at least 1")
        try check(scheduler.leaseSeconds >= 5, key: "scheduler.lease_seconds", "scheduler.lease_seconds must be at least 5")
        try check(http.port >= 0 && http.port <= 65_535, key: "http.port", "http.port \(http.port) is not a port number")
        try check(HTTP.isLoopback(http.host) || !http.authTokenEnv.isEmpty, key: "http.auth_token_env",
                  "http.host \(http.host) is not a loopback address: set http.auth_token_env to the name of an environment variable holding a bearer token, or bind 127.0.0.1")
        try check(http.authTokenEnv.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, key: "http.auth_token_env",
                  "http.auth_token_env must be the name of an environment variable (letters, digits, _), not the token itself")
        try check(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(log.level), key: "log.level", "log.level \"\(log.level)\" is not a level: use trace, debug, info, notice, warning, error or critical")
        try check(["text", "json"].contains(log.format), key: "log.format", "log.format \"\(log.format)\" must be text or json")
        var seen = Set<String>()
        for (index, client) in clients.enumerated() {
            try check(UUID(uuidString: client.clientAccountID) != nil, key: "clients", "clients[\(index)].client_account_id \"\(client.clientAccountID)\" is not a uuid")
            try check(seen.insert(client.clientAccountID.lowercased()).inserted, key: "clients", "clients[\(index)].client_account_id \(client.clientAccountID) is listed twice")
            try check(!client.keyIDEnv.isEmpty && !client.apiKeyEnv.isEmpty, key: "clients", "clients[\(index)] must name key_id_env and api_key_env")
        }
    }
}

