import Foundation
import Planning
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `--record-file`: one JSON line per accepted record, appended with `write(2)` before the
/// answer is sent, so a line is in the kernel (and survives the process being killed) by the
/// time the client sees 200. One short lock per write keeps lines whole; no lock is held across
/// anything but the write itself.
final class RecordFile: Sendable {
    private let descriptor: Mutex<Int32>

    /// Opens (creating, appending to) `path`.
    init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SandboxError(code: .recordFile, message: "cannot open record file \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = Mutex(fd)
    }

    deinit {
        descriptor.withLock { fd in
            if fd >= 0 { _ = close(fd) }
            fd = -1
        }
    }

    /// Appends `text` (whole lines, each ending in `\n`).
    func append(_ text: String) throws {
        var text = text
        try text.withUTF8 { bytes in
            try descriptor.withLock { fd in
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw SandboxError(code: .recordFile, message: "cannot write record file: \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
        }
    }

    /// One line: `{"received_at": …, "client_account_id", "transport", "token": <fingerprint>,
    /// "caller", "receiver", "label_id", "label_name", "call_reason", "starts_at", "ends_at"}`;
    /// absent optional fields are `null`. v2 and batch fields appear under these v1 names.
    static func line(
        receivedAt: Int64, clientAccountID: String, transport: String, fingerprint: String, record: CallRecord
    ) -> String {
        var line = "{\"received_at\":\(receivedAt),\"client_account_id\":\"\(clientAccountID)\",\"transport\":\"\(transport)\""
        line += ",\"token\":\"\(fingerprint)\",\"caller\":\(JSONText.string(record.caller)),\"receiver\":\(JSONText.string(record.receiver))"
        line += ",\"label_id\":\"\(RecordParser.lowercaseText(record.labelID))\""
        line += ",\"label_name\":\(record.labelName.map(JSONText.string) ?? "null")"
        line += ",\"call_reason\":\(record.callReason.map(JSONText.string) ?? "null")"
        line += ",\"starts_at\":\(record.startsAt),\"ends_at\":\(record.endsAt)}\n"
        return line
    }
}

/// Minimal JSON text building for the hot path (a `JSONEncoder` per answer would cost more than
/// the rest of the request).
enum JSONText {
    /// `value` as a JSON string literal, quotes included.
    static func string(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
        return out
    }
}
