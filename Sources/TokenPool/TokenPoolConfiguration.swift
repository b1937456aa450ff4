public import CallRecordAPI
public import Foundation
public import Planning

/// Who the pool acts for: the client account, its API key, the transport, this process's name.
public struct TokenPoolConfiguration: Sendable {
    /// The client account whose records are pushed.
    public var clientAccountID: UUID
    /// The key pair that mints tokens (from the environment or a file, never the database).
    public var key: APIKey
    /// Real-time v1, v2, or batch.
    public var transport: Transport
    /// This process's lease-owner name (unique per process, e.g. host, pid and a random suffix).
    public var instance: String

    /// Creates a configuration.
    public init(clientAccountID: UUID, key: APIKey, transport: Transport = .v1, instance: String) {
        self.clientAccountID = clientAccountID
        self.key = key
        self.transport = transport
        self.instance = instance
    }
}
