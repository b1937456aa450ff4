public import Config
import Foundation
public import Logging

/// Log lines on stderr: `2026-11-29T12:00:00.000Z info callwindow.planner: message key=value`, or
/// one JSON object per line. Metadata never holds secrets (tokens appear as fingerprints).
public struct LineLogHandler: LogHandler {
    let label: String
    let json: Bool
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    /// A handler for `label`, writing JSON objects when `json`.
    public init(label: String, json: Bool) {
        self.label = label
        self.json = json
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let all = metadata.merging(explicit ?? [:]) { $1 }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let time = formatter.string(from: Date())
        let text: String
        if json {
            var object: [String: String] = ["time": time, "level": level.rawValue, "logger": label, "message": message.description]
            for (key, value) in all { object[key] = value.description }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            text = String(decoding: data, as: UTF8.self)
        } else {
            let pairs = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            text = "\(time) \(level.rawValue) \(label): \(message)" + (pairs.isEmpty ? "" : " " + pairs)
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

extension LineLogHandler {
    /// Makes every logger of the process write lines in `log`'s format, at its level and above.
    public static func bootstrap(_ log: Configuration.Log) {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: log.format == "json")
            handler.logLevel = Logger.Level(rawValue: log.level) ?? .info
            return handler
        }
    }
}
