/// The error of the sandbox module. Its description names what is wrong and where; it never
/// holds an API key or a token.
public struct SandboxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String {
            case configuration, recordFile = "record file", server
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The configuration file is unreadable or has a bad key or value.
        public static let configuration = Code(.configuration)
        /// The record file cannot be opened or written.
        public static let recordFile = Code(.recordFile)
        /// The HTTP server failed.
        public static let server = Code(.server)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// One sentence: what is wrong, where, and how to fix it.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func config(path: [any CodingKey], _ problem: String) -> SandboxError {
        config(path: describe(path), problem)
    }

    static func config(path: String, _ problem: String) -> SandboxError {
        SandboxError(code: .configuration, message: "sandbox config: \(path): \(problem)")
    }

    static func config(decodingError error: DecodingError) -> SandboxError {
        switch error {
        case .keyNotFound(let key, let context):
            return config(path: context.codingPath + [key], "is required")
        case .valueNotFound(_, let context):
            return config(path: context.codingPath, "is required")
        case .typeMismatch(let type, let context):
            return config(path: context.codingPath, "must be \(typeName(type))")
        case .dataCorrupted(let context):
            return config(path: context.codingPath, "has an invalid value")
        @unknown default:
            return SandboxError(code: .configuration, message: "sandbox config: cannot be read")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is Double.Type: "a number"
        case is String.Type: "a string"
        default: "a \(type)"
        }
    }
}
