public import Crypto
public import Foundation
public import Postgres

/// Erasure of one person from one client account: every row that holds their phone number —
/// the audit trail, the queue, the campaign tables — gets a keyed pseudonym instead, through
/// `callwindow.erase_phone` (schema owner or `callwindow_admin` only). The do-not-contact list
/// keeps the number, so the person is never called again.
public struct ErasureStore: Sendable {
    /// The pseudonym key (from the environment, never the database).
    let key: SymmetricKey

    /// A store pseudonymising with `key`, which must hold at least 32 bytes.
    public init(key: SymmetricKey) throws(StoreError) {
        guard key.bitCount >= 256 else { throw StoreError(.invalidData, "the erasure key must hold at least 32 bytes") }
        self.key = key
    }

    /// A store whose key is the base64 text of the environment variable `variable`.
    public static func fromEnvironment(variable: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(StoreError) -> ErasureStore {
        guard let text = environment[variable], !text.isEmpty else {
            throw StoreError(.invalidData, "environment variable \(variable) must hold the erasure key (base64 of 32 random bytes: openssl rand -base64 32)")
        }
        guard let bytes = Data(base64Encoded: text) else {
            throw StoreError(.invalidData, "environment variable \(variable) is not base64 (make one with: openssl rand -base64 32)")
        }
        return try ErasureStore(key: SymmetricKey(data: bytes))
    }

    /// `erased-` and the first 24 hex digits of HMAC-SHA256(key, account : normalised phone): the
    /// same person gets the same pseudonym in every row and every run; without the key it cannot
    /// be traced back.
    public func pseudonym(clientAccountID: UUID, phone: String) -> String {
        let message = Data("\(clientAccountID.uuidString.lowercased()):\(Self.normalised(phone))".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: key)
        return "erased-" + mac.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// The phone as the schema stores it: `+`, spaces, `-`, `.` and parentheses removed.
    static func normalised(_ phone: String) -> String {
        String(phone.unicodeScalars.filter { !"+ ().-".unicodeScalars.contains($0) })
    }

    /// Erases `phone` from `clientAccountID` at `now`, as `instance`; returns how many rows each
    /// relation changed, in the order the function reports them. Throws the database's refusal
    /// when a record of the phone is being sent (try again in a minute).
    public func erase(clientAccountID: UUID, phone: String, now: Int64, instance: String, on connection: PostgresConnection) async throws -> [(relation: String, changed: Int)] {
        do {
            return try await connection.transaction { connection in
                try await connection.query(
                    "SELECT relation, changed FROM callwindow.erase_phone($1, $2, $3, callwindow.at_ms($4), $5)",
                    clientAccountID, phone, pseudonym(clientAccountID: clientAccountID, phone: phone), now, instance
                ).map { (try $0.decode("relation"), try $0.decode("changed")) }
            }
        } catch let error as PostgresError where error.isLockUnavailable {
            throw StoreError(.inUse, "a record of this phone is being sent right now: nothing was erased; try again in a minute")
        }
    }
}
