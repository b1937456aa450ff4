public import Foundation

/// A bearer token minted by the API. Its value is a secret: `description`, `debugDescription`
/// and reflection show only the fingerprint, so printing or logging a token never leaks it.
public struct BearerToken: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The token string to send in `Authorization: Bearer …`. Never log or store it in plaintext.
    public let secret: String
    /// `TokenFingerprint.of(secret)`, computed once.
    public let fingerprint: String

    /// Wraps a token string.
    public init(_ secret: String) {
        self.secret = secret
        self.fingerprint = TokenFingerprint.of(secret)
    }

    public var description: String { "token \(fingerprint)" }
    public var debugDescription: String { "BearerToken(fingerprint: \(fingerprint))" }
    public var customMirror: Mirror { Mirror(self, children: ["fingerprint": fingerprint]) }
}

/// An API key pair of a client account (at most 5 per account). `apiKey` is a secret and is
/// never shown by `description`, `debugDescription` or reflection.
public struct APIKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The key's public id (`key_id`).
    public let keyID: UUID
    /// The secret (`api_key`).
    public let apiKey: String

    /// Creates a key pair.
    public init(keyID: UUID, apiKey: String) {
        self.keyID = keyID
        self.apiKey = apiKey
    }

    public var description: String { "API key \(keyID.uuidString.lowercased())" }
    public var debugDescription: String { "APIKey(keyID: \(keyID.uuidString.lowercased()), apiKey: <redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": keyID]) }
}
