public import Foundation
public import Planning

// Request and response bodies of every endpoint of shared/API.md, with the API's own field
// names. UUIDs are written in lowercase, as the API's examples show. Optional fields that are
// `nil` are left out of request bodies.

// MARK: - Tokens

/// Body of `POST /clients/{clientAccountId}/token`. Holds the API key: never printed.
public struct TokenRequest: Codable, Sendable, CustomStringConvertible, CustomReflectable {
    /// `key_id`.
    public var keyID: UUID
    /// `api_key` (secret).
    public var apiKey: String

    enum CodingKeys: String, CodingKey {
        case keyID = "key_id"
        case apiKey = "api_key"
    }

    /// Creates the body.
    public init(keyID: UUID, apiKey: String) {
        self.keyID = keyID
        self.apiKey = apiKey
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        keyID = try container.decode(UUID.self, forKey: .keyID)
        apiKey = try container.decode(String.self, forKey: .apiKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(keyID.uuidString.lowercased(), forKey: .keyID)
        try container.encode(apiKey, forKey: .apiKey)
    }

    public var description: String { "TokenRequest(key_id: \(keyID.uuidString.lowercased()), api_key: <redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": keyID]) }
}

/// 200 answer of the token endpoint. Holds the token: never printed.
public struct TokenResponse: Codable, Sendable, CustomStringConvertible, CustomReflectable {
    /// The opaque token (secret).
    public var token: String
    /// Creation time as the server writes it, e.g. `2025-07-10T06:59:05.72Z`.
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case token
        case createdAt = "created_at"
    }

    /// Creates the body.
    public init(token: String, createdAt: String) {
        self.token = token
        self.createdAt = createdAt
    }

    public var description: String { "TokenResponse(token: \(TokenFingerprint.of(token)), created_at: \(createdAt))" }
    public var customMirror: Mirror { Mirror(self, children: ["createdAt": createdAt]) }
}

/// The error body of request-level failures: `{"slug": "invalid-input", "message": "…"}`.
public struct ErrorBody: Codable, Sendable, Hashable {
    /// Machine-readable kind, e.g. `invalid-input`, `authorization-error`, `rate-limit-exceeded`.
    public var slug: String
    /// Human-readable explanation.
    public var message: String

    /// Creates the body.
    public init(slug: String, message: String) {
        self.slug = slug
        self.message = message
    }
}

// MARK: - Real-time records

/// A record in the v1 (seed) shape: `caller`, `receiver`, `starts_at`, `ends_at`, `label_id`,
/// `label_name`, `call_reason`.
public struct V1Record: Codable, Sendable, Hashable {
    /// The transport-neutral record.
    public var record: CallRecord

    /// Wraps a record.
    public init(_ record: CallRecord) {
        self.record = record
    }

    public init(from decoder: any Decoder) throws {
        record = try RecordFields.decode(from: decoder, naming: .v1)
    }

    public func encode(to encoder: any Encoder) throws {
        try RecordFields.encode(record, to: encoder, naming: .v1)
    }
}

/// A record in the v2 shape: `caller_number`, `receiver_number`, `starts_at`, `ends_at`,
/// `label_id`, `dynamic_label_name`, `dynamic_call_reason`. Also the element of batch requests.
public struct V2Record: Codable, Sendable, Hashable {
    /// The transport-neutral record.
    public var record: CallRecord

    /// Wraps a record.
    public init(_ record: CallRecord) {
        self.record = record
    }

    public init(from decoder: any Decoder) throws {
        record = try RecordFields.decode(from: decoder, naming: .v2)
    }

    public func encode(to encoder: any Encoder) throws {
        try RecordFields.encode(record, to: encoder, naming: .v2)
    }
}

/// The record fields of one transport's naming, read and written in one place for v1, v2 and
/// batch status entries.
enum RecordFields {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func decode(from decoder: any Decoder, naming: FieldNaming) throws -> CallRecord {
        let c = try decoder.container(keyedBy: Key.self)
        return CallRecord(
            caller: try c.decode(String.self, forKey: Key(naming.caller)),
            receiver: try c.decode(String.self, forKey: Key(naming.receiver)),
            startsAt: try c.decode(Int64.self, forKey: Key(naming.startsAt)),
            endsAt: try c.decode(Int64.self, forKey: Key(naming.endsAt)),
            labelID: try c.decode(UUID.self, forKey: Key(naming.labelID)),
            labelName: try c.decodeIfPresent(String.self, forKey: Key(naming.labelName)),
            callReason: try c.decodeIfPresent(String.self, forKey: Key(naming.callReason))
        )
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The record as a JSON object in `naming`, written directly: the same object as
    /// `JSONEncoder` makes of `V1Record` or `V2Record` (absent optionals omitted), at a fraction
    /// of its cost on the push path (2.6 % of the daemon's CPU per v1 push went to JSONEncoder).
    static func json(_ record: CallRecord, naming: FieldNaming) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        func key(_ name: String) {
            out.append(out.isEmpty ? UInt8(ascii: "{") : UInt8(ascii: ","))
            string(name)
            out.append(UInt8(ascii: ":"))
        }
        func string(_ value: String) {
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0x00..<0x20:
                    out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
                default: out.append(byte)  // UTF-8 of a valid String: valid in JSON as it is
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        key(naming.caller); string(record.caller)
        key(naming.receiver); string(record.receiver)
        key(naming.startsAt); out += Array(String(record.startsAt).utf8)
        key(naming.endsAt); out += Array(String(record.endsAt).utf8)
        key(naming.labelID); string(record.labelID.uuidString.lowercased())
        if let labelName = record.labelName { key(naming.labelName); string(labelName) }
        if let callReason = record.callReason { key(naming.callReason); string(callReason) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func encode(_ record: CallRecord, to encoder: any Encoder, naming: FieldNaming) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(record.caller, forKey: Key(naming.caller))
        try c.encode(record.receiver, forKey: Key(naming.receiver))
        try c.encode(record.startsAt, forKey: Key(naming.startsAt))
        try c.encode(record.endsAt, forKey: Key(naming.endsAt))
        try c.encode(record.labelID.uuidString.lowercased(), forKey: Key(naming.labelID))
        try c.encodeIfPresent(record.labelName, forKey: Key(naming.labelName))
        try c.encodeIfPresent(record.callReason, forKey: Key(naming.callReason))
    }
}

/// v1 success: `{"status": "success", "message": "Records Uploaded Successfully. BatchID: <uuid>"}`.
public struct V1Response: Codable, Sendable, Hashable {
    /// `success` on acceptance.
    public var status: String
    /// Free text.
    public var message: String?

    /// Creates the body.
    public init(status: String, message: String?) {
        self.status = status
        self.message = message
    }
}

/// The `status_info` object of v2 answers and batch statuses.
public struct StatusInfo: Codable, Sendable, Hashable {
    /// `success`, `failed`, `error`, or a pending state of a batch record.
    public var status: String
    /// Free text; for failures the reason (shared/API.md outcome vocabulary).
    public var message: String?
    /// The offending field, when the server names one.
    public var field: String?

    /// Creates the object.
    public init(status: String, message: String? = nil, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }
}

/// v2 real-time answer: `{"status_info": {"status": "success", "message": "Record processed successfully"}}`.
public struct V2Response: Codable, Sendable, Hashable {
    /// The outcome.
    public var statusInfo: StatusInfo

    enum CodingKeys: String, CodingKey {
        case statusInfo = "status_info"
    }

    /// Creates the body.
    public init(statusInfo: StatusInfo) {
        self.statusInfo = statusInfo
    }
}

// MARK: - Batch

/// Body of `POST /v2/clients/{id}/dynamic_call_records`: 1 to 500 v2 records.
public struct BatchRequest: Codable, Sendable, Hashable {
    /// `call_records`.
    public var callRecords: [V2Record]

    enum CodingKeys: String, CodingKey {
        case callRecords = "call_records"
    }

    /// Creates the body from transport-neutral records.
    public init(records: [CallRecord]) {
        self.callRecords = records.map(V2Record.init)
    }
}

/// 200 answer of the batch endpoint: `{"batch_id": "<uuid>"}`.
public struct BatchResponse: Codable, Sendable, Hashable {
    /// Id to query the batch's per-record status with.
    public var batchID: UUID

    enum CodingKeys: String, CodingKey {
        case batchID = "batch_id"
    }

    /// Creates the body.
    public init(batchID: UUID) {
        self.batchID = batchID
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(batchID.uuidString.lowercased(), forKey: .batchID)
    }
}

/// One record of a batch status answer.
public struct BatchRecordStatus: Codable, Sendable, Hashable {
    /// Server-side id of the record.
    public var id: String?
    /// The record as the server holds it (`nil` if the server did not echo its fields).
    public var record: CallRecord?
    /// Its state: `success`, `failed` (with the reason in `message`) or a pending state.
    public var statusInfo: StatusInfo

    enum CodingKeys: String, CodingKey {
        case id
        case statusInfo = "status_info"
    }

    /// Creates a record status.
    public init(id: String?, record: CallRecord?, statusInfo: StatusInfo) {
        self.id = id
        self.record = record
        self.statusInfo = statusInfo
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        statusInfo = try c.decode(StatusInfo.self, forKey: .statusInfo)
        record = try? RecordFields.decode(from: decoder, naming: .v2)
    }

    public func encode(to encoder: any Encoder) throws {
        if let record {
            try RecordFields.encode(record, to: encoder, naming: .v2)
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(id, forKey: .id)
        try c.encode(statusInfo, forKey: .statusInfo)
    }

    /// The record's outcome, or `nil` while the server has not decided yet.
    public var outcome: PushOutcome? {
        switch statusInfo.status.lowercased() {
        case "success", "accepted", "processed", "delivered":
            return .accepted
        case "failed", "failure", "error", "rejected":
            var reason = statusInfo.message ?? statusInfo.status
            if let field = statusInfo.field, !field.isEmpty, !reason.contains(field) {
                reason = "\(field): \(reason)"
            }
            return OutcomeVocabulary.outcome(forFailure: reason)
        default:
            return nil
        }
    }
}

/// Answer of `GET /v2/clients/{id}/dynamic_call_records?batchId=…`.
public struct BatchStatusResponse: Codable, Sendable, Hashable {
    /// `client_account_id`.
    public var clientAccountID: UUID
    /// `batch_id`.
    public var batchID: UUID
    /// One entry per record of the batch, in request order.
    public var data: [BatchRecordStatus]

    enum CodingKeys: String, CodingKey {
        case clientAccountID = "client_account_id"
        case batchID = "batch_id"
        case data
    }

    /// Creates the body.
    public init(clientAccountID: UUID, batchID: UUID, data: [BatchRecordStatus]) {
        self.clientAccountID = clientAccountID
        self.batchID = batchID
        self.data = data
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(clientAccountID.uuidString.lowercased(), forKey: .clientAccountID)
        try c.encode(batchID.uuidString.lowercased(), forKey: .batchID)
        try c.encode(data, forKey: .data)
    }
}

// MARK: - Labels

/// One entry of `GET /clients/{id}/labels`.
public struct Label: Codable, Sendable, Hashable {
    /// The label id used as `label_id`.
    public var id: UUID
    /// Its display name.
    public var name: String
    /// `logo_url`.
    public var logoURL: String?
    /// `category`.
    public var category: String?
    /// `sub_category`.
    public var subCategory: String?
    /// `created_by_email`.
    public var createdByEmail: String?
    /// `created_at`, as the server writes it.
    public var createdAt: String?
    /// `dynamic` for labels usable in call records; anything else (e.g. `static`) is not.
    public var labelType: String

    enum CodingKeys: String, CodingKey {
        case id, name, category
        case logoURL = "logo_url"
        case subCategory = "sub_category"
        case createdByEmail = "created_by_email"
        case createdAt = "created_at"
        case labelType = "label_type"
    }

    /// Creates a label entry.
    public init(
        id: UUID, name: String, labelType: String, logoURL: String? = nil, category: String? = nil,
        subCategory: String? = nil, createdByEmail: String? = nil, createdAt: String? = nil
    ) {
        self.id = id
        self.name = name
        self.labelType = labelType
        self.logoURL = logoURL
        self.category = category
        self.subCategory = subCategory
        self.createdByEmail = createdByEmail
        self.createdAt = createdAt
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id.uuidString.lowercased(), forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(logoURL, forKey: .logoURL)
        try c.encode(category, forKey: .category)
        try c.encode(subCategory, forKey: .subCategory)
        try c.encode(createdByEmail, forKey: .createdByEmail)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(labelType, forKey: .labelType)
    }

    /// Whether records may use this label.
    public var isDynamic: Bool { labelType.lowercased() == "dynamic" }

    /// The validator's view of this label, owned by `clientAccountID`.
    public func info(clientAccountID: UUID) -> LabelInfo {
        LabelInfo(id: id, clientAccountID: clientAccountID, name: name, isDynamic: isDynamic)
    }
}
