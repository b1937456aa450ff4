public import Foundation
import Yams

/// What the sandbox serves: its client accounts with their keys and labels, its limits and the
/// faults it injects. Read from YAML (`config/sandbox.yaml`); unknown keys and bad values are
/// errors naming the key.
public struct SandboxConfiguration: Sendable, Hashable, Decodable {
    /// The client accounts the sandbox knows; any other account id answers 404.
    public var clients: [Client]
    /// Rate limits; default the documented values.
    public var limits: Limits
    /// Injected faults; default none.
    public var faults: Faults

    /// Creates a configuration.
    public init(clients: [Client], limits: Limits = Limits(), faults: Faults = Faults()) {
        self.clients = clients
        self.limits = limits
        self.faults = faults
    }

    /// One client account.
    public struct Client: Sendable, Hashable, Decodable {
        /// `client_account_id`.
        public var clientAccountID: UUID
        /// `api_keys`: the key pairs that may mint tokens.
        public var apiKeys: [Key]
        /// `labels`: the account's labels, dynamic or static.
        public var labels: [Label]

        /// Creates a client account.
        public init(clientAccountID: UUID, apiKeys: [Key], labels: [Label]) {
            self.clientAccountID = clientAccountID
            self.apiKeys = apiKeys
            self.labels = labels
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case clientAccountID = "client_account_id", apiKeys = "api_keys", labels
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            clientAccountID = try decodeUUID(c, .clientAccountID)
            apiKeys = try c.decodeIfPresent([Key].self, forKey: .apiKeys) ?? []
            labels = try c.decodeIfPresent([Label].self, forKey: .labels) ?? []
        }
    }

    /// An API key pair (`key_id`, `api_key`).
    public struct Key: Sendable, Hashable, Decodable, CustomStringConvertible, CustomReflectable {
        /// `key_id`.
        public var keyID: UUID
        /// `api_key` (secret; not shown by `description`).
        public var apiKey: String

        /// Creates a key pair.
        public init(keyID: UUID, apiKey: String) {
            self.keyID = keyID
            self.apiKey = apiKey
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case keyID = "key_id", apiKey = "api_key"
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            keyID = try decodeUUID(c, .keyID)
            apiKey = try c.decode(String.self, forKey: .apiKey)
            if apiKey.isEmpty {
                throw SandboxError.config(path: decoder.codingPath + [CodingKeys.apiKey], "must not be empty")
            }
        }

        public var description: String { "key \(keyID.uuidString.lowercased())" }
        public var customMirror: Mirror { Mirror(self, children: ["keyID": keyID]) }
    }

    /// A label (`id`, `name`, `label_type`: `dynamic` or `static`).
    public struct Label: Sendable, Hashable, Decodable {
        /// `id`.
        public var id: UUID
        /// `name`.
        public var name: String
        /// `label_type == dynamic`.
        public var isDynamic: Bool

        /// Creates a label.
        public init(id: UUID, name: String, isDynamic: Bool) {
            self.id = id
            self.name = name
            self.isDynamic = isDynamic
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, name, labelType = "label_type"
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try decodeUUID(c, .id)
            name = try c.decode(String.self, forKey: .name)
            let type = try c.decodeIfPresent(String.self, forKey: .labelType) ?? "dynamic"
            switch type {
            case "dynamic": isDynamic = true
            case "static": isDynamic = false
            default:
                throw SandboxError.config(path: decoder.codingPath + [CodingKeys.labelType], "must be dynamic or static, not \(type)")
            }
        }
    }

    /// The limits, `limits:` in YAML. Defaults are the documented values.
    public struct Limits: Sendable, Hashable, Decodable {
        /// Accepted real-time requests per token in any 1 s. Default 100.
        public var realtimeRequestsPerSecondPerToken: Int = 100
        /// Accepted batch requests per token in any 60 s. Default 60.
        public var batchRequestsPerMinutePerToken: Int = 60
        /// Most records in one batch request. Default 500.
        public var batchMaxRecords: Int = 500
        /// Successful mints allowed in any `tokenWindowSeconds`. Default 10.
        public var tokensPerWindow: Int = 10
        /// The mint window. Default 1,800 s.
        public var tokenWindowSeconds: Int64 = 1_800
        /// A token's lifetime from minting. Default 3,600 s.
        public var tokenTTLSeconds: Int64 = 3_600
        /// Whether the mint limit is counted per account (default) or per API key — the docs do not say.
        public var mintLimitScope: MintLimitScope = .account
        /// `false` turns every rate limit off, to measure the engine itself. Default `true`.
        public var enforce: Bool = true

        /// Creates limits; every parameter defaults to the documented value.
        public init(
            realtimeRequestsPerSecondPerToken: Int = 100, batchRequestsPerMinutePerToken: Int = 60,
            batchMaxRecords: Int = 500, tokensPerWindow: Int = 10, tokenWindowSeconds: Int64 = 1_800,
            tokenTTLSeconds: Int64 = 3_600, mintLimitScope: MintLimitScope = .account, enforce: Bool = true
        ) {
            self.realtimeRequestsPerSecondPerToken = realtimeRequestsPerSecondPerToken
            self.batchRequestsPerMinutePerToken = batchRequestsPerMinutePerToken
            self.batchMaxRecords = batchMaxRecords
            self.tokensPerWindow = tokensPerWindow
            self.tokenWindowSeconds = tokenWindowSeconds
            self.tokenTTLSeconds = tokenTTLSeconds
            self.mintLimitScope = mintLimitScope
            self.enforce = enforce
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case realtimeRequestsPerSecondPerToken = "realtime_requests_per_second_per_token"
            case batchRequestsPerMinutePerToken = "batch_requests_per_minute_per_token"
            case batchMaxRecords = "batch_max_records"
            case tokensPerWindow = "tokens_per_window"
            case tokenWindowSeconds = "token_window_seconds"
            case tokenTTLSeconds = "token_ttl_seconds"
            case mintLimitScope = "mint_limit_scope"
            case enforce
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func positive<T: BinaryInteger & Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
                guard let value = try c.decodeIfPresent(T.self, forKey: key) else { return fallback }
                guard value > 0 else { throw SandboxError.config(path: decoder.codingPath + [key], "must be greater than 0") }
                return value
            }
            realtimeRequestsPerSecondPerToken = try positive(.realtimeRequestsPerSecondPerToken, 100)
            batchRequestsPerMinutePerToken = try positive(.batchRequestsPerMinutePerToken, 60)
            batchMaxRecords = try positive(.batchMaxRecords, 500)
            tokensPerWindow = try positive(.tokensPerWindow, 10)
            tokenWindowSeconds = try positive(.tokenWindowSeconds, 1_800)
            tokenTTLSeconds = try positive(.tokenTTLSeconds, 3_600)
            if let scope = try c.decodeIfPresent(String.self, forKey: .mintLimitScope) {
                guard let value = MintLimitScope(rawValue: scope) else {
                    throw SandboxError.config(path: decoder.codingPath + [CodingKeys.mintLimitScope], "must be account or key, not \(scope)")
                }
                mintLimitScope = value
            }
            enforce = try c.decodeIfPresent(Bool.self, forKey: .enforce) ?? true
        }
    }

    /// What one mint limit counts: all mints of an account, or those of one API key.
    public enum MintLimitScope: String, Sendable, Hashable {
        case account
        case key
    }

    /// Injected faults, `faults:` in YAML. Deterministic for a seed: the n-th push request
    /// admitted by the sandbox always gets the same fault.
    public struct Faults: Sendable, Hashable, Decodable {
        /// Seed of the fault sequence. Default 1.
        public var seed: UInt64 = 1
        /// Median added latency of push answers, ms. Default 0.
        public var latencyP50Ms: Int64 = 0
        /// 99th-percentile added latency, ms. Default 0.
        public var latencyP99Ms: Int64 = 0
        /// Share of push requests answered 500 or 503, not applied. Default 0.
        public var errorRate: Double = 0
        /// Share of push requests whose connection is closed without an answer, not applied. Default 0.
        public var resetRate: Double = 0
        /// Share of push requests applied (recorded) whose answer never comes. Default 0.
        public var timeoutRate: Double = 0
        /// A rate-limit storm starts every this many seconds after start-up (0: never). Default 0.
        public var stormEverySeconds: Int64 = 0
        /// …and lasts this many seconds, answering every push 429. Default 0.
        public var stormLastingSeconds: Int64 = 0

        /// Creates fault settings; every parameter defaults to "no fault".
        public init(
            seed: UInt64 = 1, latencyP50Ms: Int64 = 0, latencyP99Ms: Int64 = 0, errorRate: Double = 0,
            resetRate: Double = 0, timeoutRate: Double = 0, stormEverySeconds: Int64 = 0, stormLastingSeconds: Int64 = 0
        ) {
            self.seed = seed
            self.latencyP50Ms = latencyP50Ms
            self.latencyP99Ms = latencyP99Ms
            self.errorRate = errorRate
            self.resetRate = resetRate
            self.timeoutRate = timeoutRate
            self.stormEverySeconds = stormEverySeconds
            self.stormLastingSeconds = stormLastingSeconds
        }

        /// Whether any fault is configured (the request path skips the fault draw otherwise).
        public var isEmpty: Bool {
            latencyP50Ms == 0 && latencyP99Ms == 0 && errorRate == 0 && resetRate == 0 && timeoutRate == 0
                && (stormEverySeconds == 0 || stormLastingSeconds == 0)
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case seed, latencyMs = "latency_ms", errorRate = "error_rate", resetRate = "reset_rate"
            case timeoutRate = "timeout_rate", rateLimitStorm = "rate_limit_storm"
        }

        enum LatencyKeys: String, CodingKey, CaseIterable {
            case p50, p99
        }

        enum StormKeys: String, CodingKey, CaseIterable {
            case everySeconds = "every_seconds", lastingSeconds = "lasting_seconds"
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let path = decoder.codingPath
            seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 1
            if c.contains(.latencyMs) {
                let latencyDecoder = try c.superDecoder(forKey: .latencyMs)
                try rejectUnknownKeys(latencyDecoder, LatencyKeys.self)
                let l = try latencyDecoder.container(keyedBy: LatencyKeys.self)
                latencyP50Ms = try l.decodeIfPresent(Int64.self, forKey: .p50) ?? 0
                latencyP99Ms = try l.decodeIfPresent(Int64.self, forKey: .p99) ?? latencyP50Ms
                guard latencyP50Ms >= 0 else { throw SandboxError.config(path: path + [CodingKeys.latencyMs, LatencyKeys.p50], "must not be negative") }
                guard latencyP99Ms >= latencyP50Ms else {
                    throw SandboxError.config(path: path + [CodingKeys.latencyMs, LatencyKeys.p99], "must be at least p50")
                }
            }
            func rate(_ key: CodingKeys) throws -> Double {
                let value = try c.decodeIfPresent(Double.self, forKey: key) ?? 0
                guard (0...1).contains(value) else { throw SandboxError.config(path: path + [key], "must be between 0 and 1") }
                return value
            }
            errorRate = try rate(.errorRate)
            resetRate = try rate(.resetRate)
            timeoutRate = try rate(.timeoutRate)
            guard errorRate + resetRate + timeoutRate <= 1 else {
                throw SandboxError.config(path: path + [CodingKeys.errorRate], "error_rate + reset_rate + timeout_rate must not exceed 1")
            }
            if c.contains(.rateLimitStorm) {
                let stormDecoder = try c.superDecoder(forKey: .rateLimitStorm)
                try rejectUnknownKeys(stormDecoder, StormKeys.self)
                let s = try stormDecoder.container(keyedBy: StormKeys.self)
                stormEverySeconds = try s.decodeIfPresent(Int64.self, forKey: .everySeconds) ?? 0
                stormLastingSeconds = try s.decodeIfPresent(Int64.self, forKey: .lastingSeconds) ?? 0
                guard stormEverySeconds >= 0, stormLastingSeconds >= 0, stormLastingSeconds <= stormEverySeconds else {
                    throw SandboxError.config(
                        path: path + [CodingKeys.rateLimitStorm],
                        "needs 0 <= lasting_seconds <= every_seconds"
                    )
                }
            }
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case clients, limits, faults
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        clients = try c.decode([Client].self, forKey: .clients)
        limits = try c.decodeIfPresent(Limits.self, forKey: .limits) ?? Limits()
        faults = try c.decodeIfPresent(Faults.self, forKey: .faults) ?? Faults()
        var seen = Set<UUID>()
        for (index, client) in clients.enumerated() where !seen.insert(client.clientAccountID).inserted {
            throw SandboxError.config(path: "clients[\(index)].client_account_id", "appears twice")
        }
    }

    /// Parses YAML text.
    public static func parse(yaml: String) throws -> SandboxConfiguration {
        do {
            return try YAMLDecoder().decode(SandboxConfiguration.self, from: yaml)
        } catch let error as SandboxError {
            throw error
        } catch let error as DecodingError {
            // Yams wraps errors thrown by `init(from:)` as the underlying error of a DecodingError.
            if let inner = Self.underlying(error) { throw inner }
            throw SandboxError.config(decodingError: error)
        } catch {
            throw SandboxError(code: .configuration, message: "sandbox config is not valid YAML: \(error)")
        }
    }

    private static func underlying(_ error: DecodingError) -> SandboxError? {
        let context: DecodingError.Context
        switch error {
        case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c): context = c
        @unknown default: return nil
        }
        switch context.underlyingError {
        case let inner as SandboxError: return inner
        case let inner as DecodingError: return underlying(inner) ?? SandboxError.config(decodingError: inner)
        default: return nil
        }
    }

    /// Reads and parses a YAML file.
    public static func load(path: String) throws -> SandboxConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SandboxError(code: .configuration, message: "cannot read sandbox config \(path): \(error.localizedDescription)")
        }
        return try parse(yaml: text)
    }
}

// MARK: - Decoding helpers

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Throws naming the first key of the mapping at `decoder` that `Keys` does not know.
private func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _: Keys.Type) throws {
    let container = try decoder.container(keyedBy: AnyKey.self)
    let known = Set(Keys.allCases.map(\.stringValue))
    if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
        throw SandboxError.config(path: decoder.codingPath + [AnyKey(stringValue: unknown)], "unknown key")
    }
}

private func decodeUUID<Keys: CodingKey>(_ c: KeyedDecodingContainer<Keys>, _ key: Keys) throws -> UUID {
    let text = try c.decode(String.self, forKey: key)
    guard let uuid = UUID(uuidString: text) else {
        throw SandboxError.config(path: c.codingPath + [key], "must be a UUID")
    }
    return uuid
}

/// `clients[0].api_keys[1].key_id` for a coding path.
func describe(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return text.isEmpty ? "(top level)" : text
}
