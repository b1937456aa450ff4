import Foundation
import Planning

/// A fast path for the one body the sandbox reads 10,000 times a second: a flat JSON object of
/// a real-time record. It accepts only the plain shape — string values without escapes, integer
/// values, `null`, unknown keys with scalar values — and answers `nil` for anything else, so the
/// caller falls back to `JSONDecoder`, which then decodes or explains the error exactly as before.
/// Whatever it accepts, `JSONDecoder` would decode to the same record.
struct RecordParser {
    /// Key names of the record's fields (v1 or v2).
    let caller: [UInt8]
    let receiver: [UInt8]
    let labelName: [UInt8]
    let callReason: [UInt8]
    static let startsAt = Array("starts_at".utf8)
    static let endsAt = Array("ends_at".utf8)
    static let labelID = Array("label_id".utf8)

    init(naming: FieldNaming) {
        caller = Array(naming.caller.utf8)
        receiver = Array(naming.receiver.utf8)
        labelName = Array(naming.labelName.utf8)
        callReason = Array(naming.callReason.utf8)
    }

    static let v1 = RecordParser(naming: .v1)
    static let v2 = RecordParser(naming: .v2)

    func parse(_ bytes: UnsafeRawBufferPointer) -> CallRecord? {
        var scanner = Scanner(bytes: bytes)
        var caller: String?, receiver: String?, labelName: String??, callReason: String??
        var startsAt: Int64?, endsAt: Int64?, labelID: UUID?
        scanner.skipSpace()
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        scanner.skipSpace()
        if !scanner.take(UInt8(ascii: "}")) {
            repeat {
                scanner.skipSpace()
                guard let key = scanner.rawString() else { return nil }
                scanner.skipSpace()
                guard scanner.take(UInt8(ascii: ":")) else { return nil }
                scanner.skipSpace()
                if key.elementsEqual(self.caller) {
                    guard caller == nil, let value = scanner.string() else { return nil }
                    caller = value
                } else if key.elementsEqual(self.receiver) {
                    guard receiver == nil, let value = scanner.string() else { return nil }
                    receiver = value
                } else if key.elementsEqual(Self.startsAt) {
                    guard startsAt == nil, let value = scanner.integer() else { return nil }
                    startsAt = value
                } else if key.elementsEqual(Self.endsAt) {
                    guard endsAt == nil, let value = scanner.integer() else { return nil }
                    endsAt = value
                } else if key.elementsEqual(Self.labelID) {
                    guard labelID == nil, let raw = scanner.rawString(), let value = Self.uuid(raw) else { return nil }
                    labelID = value
                } else if key.elementsEqual(self.labelName) {
                    guard labelName == nil, let value = scanner.optionalString() else { return nil }
                    labelName = value
                } else if key.elementsEqual(self.callReason) {
                    guard callReason == nil, let value = scanner.optionalString() else { return nil }
                    callReason = value
                } else {
                    guard scanner.skipScalar() else { return nil }
                }
                scanner.skipSpace()
            } while scanner.take(UInt8(ascii: ","))
            guard scanner.take(UInt8(ascii: "}")) else { return nil }
        }
        scanner.skipSpace()
        guard scanner.atEnd, let caller, let receiver, let startsAt, let endsAt, let labelID else { return nil }
        return CallRecord(
            caller: caller, receiver: receiver, startsAt: startsAt, endsAt: endsAt, labelID: labelID,
            labelName: labelName ?? nil, callReason: callReason ?? nil
        )
    }

    /// A UUID from its 36-character text form (either case).
    static func uuid(_ text: UnsafeRawBufferPointer) -> UUID? {
        guard text.count == 36 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 16)
        var index = 0
        var position = 0
        while position < 36 {
            if position == 8 || position == 13 || position == 18 || position == 23 {
                guard text[position] == UInt8(ascii: "-") else { return nil }
                position += 1
                continue
            }
            guard let high = hexValue(text[position]), let low = hexValue(text[position + 1]) else { return nil }
            bytes[index] = high << 4 | low
            index += 1
            position += 2
        }
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
        ))
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Lowercase text form of `uuid`, without going through `uuidString`.
    static func lowercaseText(_ uuid: UUID) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return withUnsafeBytes(of: uuid.uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { out in
                var position = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    out[position] = digits[Int(raw[index] >> 4)]
                    out[position + 1] = digits[Int(raw[index] & 0x0F)]
                    position += 2
                }
                return 36
            }
        }
    }
}

/// A cursor over JSON bytes, for the plain subset `RecordParser` accepts.
private struct Scanner {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var atEnd: Bool { position == bytes.count }

    mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func take(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// The bytes of a string literal without escapes or control characters.
    mutating func rawString() -> UnsafeRawBufferPointer? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                position += 1
                return slice
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            position += 1
        }
        return nil
    }

    /// A string value (valid UTF-8 only).
    mutating func string() -> String? {
        guard let raw = rawString() else { return nil }
        return String(validating: raw, as: UTF8.self)
    }

    /// A string value or `null` (`.some(nil)`); `nil` for anything else.
    mutating func optionalString() -> String?? {
        if takeLiteral("null") { return .some(nil) }
        guard let value = string() else { return nil }
        return .some(value)
    }

    /// An integer literal (`-?[0-9]+`) within `Int64`, not followed by a fraction or exponent.
    mutating func integer() -> Int64? {
        let negative = take(UInt8(ascii: "-"))
        let start = position
        var value: Int64 = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[position] - UInt8(ascii: "0"))
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            position += 1
        }
        let count = position - start
        guard count > 0, !(count > 1 && bytes[start] == UInt8(ascii: "0")) else { return nil }
        if position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
            default: break
            }
        }
        return value
    }

    /// Skips a scalar value of an unknown key: a plain string, a number, `true`, `false`, `null`.
    mutating func skipScalar() -> Bool {
        guard position < bytes.count else { return false }
        switch bytes[position] {
        case UInt8(ascii: "\""): return rawString() != nil
        case UInt8(ascii: "t"): return takeLiteral("true")
        case UInt8(ascii: "f"): return takeLiteral("false")
        case UInt8(ascii: "n"): return takeLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return integer() != nil
        default: return false
        }
    }

    mutating func takeLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        let matches = literal.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[position + $0] == expected[$0] }
        }
        if matches { position += count }
        return matches
    }
}
