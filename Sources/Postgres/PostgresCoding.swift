public import Foundation

/// A PostgreSQL type identifier.
public typealias PostgresOID = UInt32

/// Type OIDs of the built-in types this module binds and decodes.
public enum PostgresType {
    /// OID of `bool`; `Bool` binds as it and decodes only from it.
    public static let bool: PostgresOID = 16
    /// OID of `bytea`; `Data` binds as it and decodes only from it.
    public static let bytea: PostgresOID = 17
    /// OID of `"char"`, the one-byte internal type; decodes to `String`.
    public static let char: PostgresOID = 18
    /// OID of `name`, the catalogue identifier type; decodes to `String`.
    public static let name: PostgresOID = 19
    /// OID of `int8` (`bigint`); `Int` and `Int64` bind as it.
    public static let int8: PostgresOID = 20
    /// OID of `int2` (`smallint`); `Int16` binds as it.
    public static let int2: PostgresOID = 21
    /// OID of `int4` (`integer`); `Int32` binds as it.
    public static let int4: PostgresOID = 23
    /// OID of `text`; `String` binds as it.
    public static let text: PostgresOID = 25
    /// OID of `oid` itself; decodes to the integer types as an unsigned 32-bit value.
    public static let oid: PostgresOID = 26
    /// OID of `json`; decodes to `String` (the JSON text).
    public static let json: PostgresOID = 114
    /// OID of `float4` (`real`); decodes to `Double`, never bound.
    public static let float4: PostgresOID = 700
    /// OID of `float8` (`double precision`); `Double` binds as it.
    public static let float8: PostgresOID = 701
    /// OID of `unknown`, the type of an untyped literal; decodes to `String`.
    public static let unknown: PostgresOID = 705
    /// OID of `bpchar` (`char(n)`); decodes to `String`.
    public static let bpchar: PostgresOID = 1042
    /// OID of `varchar`; decodes to `String`.
    public static let varchar: PostgresOID = 1043
    /// OID of `timestamp` without time zone; decodes to `Date`, read as UTC.
    public static let timestamp: PostgresOID = 1114
    /// OID of `timestamptz`; `Date` binds as it (microsecond precision).
    public static let timestamptz: PostgresOID = 1184
    /// OID of `uuid`; `UUID` binds as it and decodes only from it.
    public static let uuid: PostgresOID = 2950
    /// OID of `jsonb`; decodes to `String` (binary format version 1 only).
    public static let jsonb: PostgresOID = 3802

    /// The array type of each element type this module encodes.
    static func arrayOID(of element: PostgresOID) -> PostgresOID? {
        switch element {
        case bool: 1000
        case bytea: 1001
        case int2: 1005
        case int4: 1007
        case text: 1009
        case varchar: 1015
        case int8: 1016
        case float8: 1022
        case timestamptz: 1185
        case uuid: 2951
        default: nil
        }
    }

    /// The element type of an array type, when known.
    static func elementOID(ofArray array: PostgresOID) -> PostgresOID? {
        switch array {
        case 1000: bool
        case 1001: bytea
        case 1005: int2
        case 1007: int4
        case 1009: text
        case 1015: varchar
        case 1016: int8
        case 1021: float4
        case 1022: float8
        case 1115: timestamp
        case 1185: timestamptz
        case 2951: uuid
        default: nil
        }
    }

    static let textLike: Set<PostgresOID> = [text, varchar, bpchar, name, char, unknown, json]
}

// MARK: - Encoding

/// A Swift value that can be bound as a query parameter (binary format, explicit type).
///
/// There is deliberately no way to splice a value into SQL text: every value travels as a
/// bound parameter.
public protocol PostgresEncodable: Sendable {
    /// The parameter's type as PostgreSQL sees it.
    static var postgresType: PostgresOID { get }
    /// Appends the binary representation; not called when `isPostgresNull` is true.
    func encode(into buffer: inout [UInt8]) throws(PostgresError)
    /// True only for `nil` optionals, which are sent as SQL NULL.
    var isPostgresNull: Bool { get }
}

extension PostgresEncodable {
    /// False: a non-optional value is never NULL.
    public var isPostgresNull: Bool { false }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    /// The wrapped type's OID, so `nil` is sent as a typed NULL.
    public static var postgresType: PostgresOID { Wrapped.postgresType }
    /// True for `nil`, and for a wrapped value that is itself NULL (nested optionals).
    public var isPostgresNull: Bool {
        switch self {
        case .none: true
        case .some(let value): value.isPostgresNull
        }
    }
    /// Encodes the wrapped value; writes nothing for `nil`.
    public func encode(into buffer: inout [UInt8]) throws(PostgresError) {
        if let value = self { try value.encode(into: &buffer) }
    }
}

@inline(__always)
func appendBigEndian<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
    withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
}

extension Int: PostgresEncodable {
    /// `int8`: an `Int` is always sent as 64 bits.
    public static var postgresType: PostgresOID { PostgresType.int8 }
    /// Eight bytes, big-endian.
    public func encode(into buffer: inout [UInt8]) { appendBigEndian(Int64(self), to: &buffer) }
}

extension Int64: PostgresEncodable {
    /// `int8`.
    public static var postgresType: PostgresOID { PostgresType.int8 }
    /// Eight bytes, big-endian.
    public func encode(into buffer: inout [UInt8]) { appendBigEndian(self, to: &buffer) }
}

extension Int32: PostgresEncodable {
    /// `int4`.
    public static var postgresType: PostgresOID { PostgresType.int4 }
    /// Four bytes, big-endian.
    public func encode(into buffer: inout [UInt8]) { appendBigEndian(self, to: &buffer) }
}

extension Int16: PostgresEncodable {
    /// `int2`.
    public static var postgresType: PostgresOID { PostgresType.int2 }
    /// Two bytes, big-endian.
    public func encode(into buffer: inout [UInt8]) { appendBigEndian(self, to: &buffer) }
}

extension Double: PostgresEncodable {
    /// `float8`.
    public static var postgresType: PostgresOID { PostgresType.float8 }
    /// The IEEE 754 bit pattern, eight bytes big-endian.
    public func encode(into buffer: inout [UInt8]) { appendBigEndian(bitPattern, to: &buffer) }
}

extension Bool: PostgresEncodable {
    /// `bool`.
    public static var postgresType: PostgresOID { PostgresType.bool }
    /// One byte: 1 for true, 0 for false.
    public func encode(into buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }
}

extension String: PostgresEncodable {
    /// `text`.
    public static var postgresType: PostgresOID { PostgresType.text }
    /// The UTF-8 bytes; throws `encoding` when the string contains a NUL character.
    public func encode(into buffer: inout [UInt8]) throws(PostgresError) {
        if utf8.contains(0) {
            throw PostgresError(code: .encoding, message: "a text parameter contains a NUL character, which PostgreSQL text cannot hold")
        }
        buffer.append(contentsOf: utf8)
    }
}

extension UUID: PostgresEncodable {
    /// `uuid`.
    public static var postgresType: PostgresOID { PostgresType.uuid }
    /// The 16 raw bytes, in RFC 4122 order.
    public func encode(into buffer: inout [UInt8]) {
        withUnsafeBytes(of: uuid) { buffer.append(contentsOf: $0) }
    }
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
let postgresEpochOffsetMicroseconds: Int64 = 946_684_800_000_000

extension Date: PostgresEncodable {
    /// Sent as `timestamptz`, rounded to the microsecond (PostgreSQL's precision).
    public static var postgresType: PostgresOID { PostgresType.timestamptz }
    /// Microseconds since 2000-01-01 UTC, rounded, as eight bytes big-endian.
    public func encode(into buffer: inout [UInt8]) {
        let micros = Int64((timeIntervalSince1970 * 1_000_000).rounded()) - postgresEpochOffsetMicroseconds
        appendBigEndian(micros, to: &buffer)
    }
}

extension Data: PostgresEncodable {
    /// `bytea`.
    public static var postgresType: PostgresOID { PostgresType.bytea }
    /// The bytes as they are.
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: self) }
}

extension Array: PostgresEncodable where Element: PostgresEncodable {
    /// One-dimensional arrays; `nil` elements of optional arrays become NULL elements.
    public static var postgresType: PostgresOID {
        PostgresType.arrayOID(of: Element.postgresType) ?? 0
    }

    /// PostgreSQL's binary array format (zero dimensions when empty); throws `encoding` when the element
    /// type has no array OID here.
    public func encode(into buffer: inout [UInt8]) throws(PostgresError) {
        guard PostgresType.arrayOID(of: Element.postgresType) != nil else {
            throw PostgresError(code: .encoding, message: "arrays of type oid \(Element.postgresType) are not supported")
        }
        let hasNull = contains { $0.isPostgresNull }
        appendBigEndian(Int32(isEmpty ? 0 : 1), to: &buffer)  // dimensions
        appendBigEndian(Int32(hasNull ? 1 : 0), to: &buffer)
        appendBigEndian(Int32(bitPattern: Element.postgresType), to: &buffer)
        if isEmpty { return }
        appendBigEndian(Int32(count), to: &buffer)
        appendBigEndian(Int32(1), to: &buffer)  // lower bound
        var element: [UInt8] = []
        for value in self {
            if value.isPostgresNull {
                appendBigEndian(Int32(-1), to: &buffer)
                continue
            }
            element.removeAll(keepingCapacity: true)
            try value.encode(into: &element)
            appendBigEndian(Int32(element.count), to: &buffer)
            buffer.append(contentsOf: element)
        }
    }
}

// MARK: - Decoding

/// A Swift type that can be decoded from a binary-format column value.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value of PostgreSQL type `type`.
    init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError)
    /// What a NULL decodes to; `nil` means NULL is an error for this type.
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    /// `nil` by default: a NULL column is a `decoding` error.
    public static var postgresNull: Self? { nil }
}

func decodingError(_ swiftType: Any.Type, _ oid: PostgresOID, _ why: String = "") -> PostgresError {
    PostgresError(code: .decoding, message: "cannot decode a value of type oid \(oid) as \(swiftType)\(why.isEmpty ? "" : ": \(why)")")
}

@inline(__always)
func readBigEndian<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0, as: T.Type) -> T {
    var value: T = 0
    withUnsafeMutableBytes(of: &value) { target in
        target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + MemoryLayout<T>.size]))
    }
    return T(bigEndian: value)
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    /// Decodes a non-NULL value as the wrapped type.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        self = .some(try Wrapped(postgresBytes: bytes, type: type))
    }
    /// NULL decodes to `nil`.
    public static var postgresNull: Self? { .some(.none) }
}

extension Int64: PostgresDecodable {
    /// Accepts int2, int4, int8 and oid columns.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        switch (type, bytes.count) {
        case (PostgresType.int8, 8): self = readBigEndian(bytes, as: Int64.self)
        case (PostgresType.int4, 4): self = Int64(readBigEndian(bytes, as: Int32.self))
        case (PostgresType.oid, 4): self = Int64(readBigEndian(bytes, as: UInt32.self))
        case (PostgresType.int2, 2): self = Int64(readBigEndian(bytes, as: Int16.self))
        default: throw decodingError(Int64.self, type)
        }
    }
}

extension Int: PostgresDecodable {
    /// Accepts int2, int4, int8 and oid columns (through `Int64`).
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        self = Int(try Int64(postgresBytes: bytes, type: type))
    }
}

extension Int32: PostgresDecodable {
    /// Accepts int2, int4, int8 and oid columns; throws `decoding` when the value does not fit in 32 bits.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        let wide = try Int64(postgresBytes: bytes, type: type)
        guard let narrow = Int32(exactly: wide) else { throw decodingError(Int32.self, type, "\(wide) is out of range") }
        self = narrow
    }
}

extension Int16: PostgresDecodable {
    /// Accepts int2, int4, int8 and oid columns; throws `decoding` when the value does not fit in 16 bits.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        let wide = try Int64(postgresBytes: bytes, type: type)
        guard let narrow = Int16(exactly: wide) else { throw decodingError(Int16.self, type, "\(wide) is out of range") }
        self = narrow
    }
}

extension Double: PostgresDecodable {
    /// Accepts float4, float8 and the integer types.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        switch (type, bytes.count) {
        case (PostgresType.float8, 8): self = Double(bitPattern: readBigEndian(bytes, as: UInt64.self))
        case (PostgresType.float4, 4): self = Double(Float(bitPattern: readBigEndian(bytes, as: UInt32.self)))
        case (PostgresType.int2, _), (PostgresType.int4, _), (PostgresType.int8, _):
            self = Double(try Int64(postgresBytes: bytes, type: type))
        default: throw decodingError(Double.self, type)
        }
    }
}

extension Bool: PostgresDecodable {
    /// Accepts only `bool` columns.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        guard type == PostgresType.bool, bytes.count == 1 else { throw decodingError(Bool.self, type) }
        self = bytes[0] != 0
    }
}

extension String: PostgresDecodable {
    /// Accepts the text types (text, varchar, char, name, json) and jsonb.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        if PostgresType.textLike.contains(type) {
            self = String(decoding: bytes, as: UTF8.self)
        } else if type == PostgresType.jsonb, bytes.count >= 1, bytes[0] == 1 {
            self = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[1...]), as: UTF8.self)
        } else {
            throw decodingError(String.self, type)
        }
    }
}

extension UUID: PostgresDecodable {
    /// Accepts only `uuid` columns (16 bytes).
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        guard type == PostgresType.uuid, bytes.count == 16 else { throw decodingError(UUID.self, type) }
        var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: bytes) }
        self = UUID(uuid: raw)
    }
}

extension Date: PostgresDecodable {
    /// Accepts timestamptz and timestamp (taken as UTC); ±infinity become distant future/past.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        guard type == PostgresType.timestamptz || type == PostgresType.timestamp, bytes.count == 8 else {
            throw decodingError(Date.self, type)
        }
        let micros = readBigEndian(bytes, as: Int64.self)
        switch micros {
        case .max: self = .distantFuture
        case .min: self = .distantPast
        default:
            let unixMicros = micros + postgresEpochOffsetMicroseconds
            // Split to keep full precision: whole seconds plus the fraction.
            let seconds = unixMicros.quotientAndRemainder(dividingBy: 1_000_000)
            self = Date(timeIntervalSince1970: Double(seconds.quotient) + Double(seconds.remainder) / 1_000_000)
        }
    }
}

extension Data: PostgresDecodable {
    /// Accepts only `bytea` columns.
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        guard type == PostgresType.bytea else { throw decodingError(Data.self, type) }
        self = Data(bytes)
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// One-dimensional arrays (an empty array has zero dimensions).
    public init(postgresBytes bytes: UnsafeRawBufferPointer, type: PostgresOID) throws(PostgresError) {
        guard bytes.count >= 12 else { throw decodingError([Element].self, type, "truncated array header") }
        let dimensions = readBigEndian(bytes, at: 0, as: Int32.self)
        let elementType = readBigEndian(bytes, at: 8, as: UInt32.self)
        if let expected = PostgresType.elementOID(ofArray: type), expected != elementType {
            throw decodingError([Element].self, type, "element type mismatch")
        }
        if dimensions == 0 {
            self = []
            return
        }
        guard dimensions == 1, bytes.count >= 20 else {
            throw decodingError([Element].self, type, "only one-dimensional arrays are supported")
        }
        let count = Int(readBigEndian(bytes, at: 12, as: Int32.self))
        var offset = 20
        var result: [Element] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            guard offset + 4 <= bytes.count else { throw decodingError([Element].self, type, "truncated array") }
            let length = Int(readBigEndian(bytes, at: offset, as: Int32.self))
            offset += 4
            if length < 0 {
                guard let null = Element.postgresNull else {
                    throw decodingError([Element].self, type, "the array holds a NULL; decode as an array of optionals")
                }
                result.append(null)
                continue
            }
            guard offset + length <= bytes.count else { throw decodingError([Element].self, type, "truncated element") }
            result.append(try Element(postgresBytes: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), type: elementType))
            offset += length
        }
        self = result
    }
}
