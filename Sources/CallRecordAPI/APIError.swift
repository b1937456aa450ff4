import Foundation

/// The error of this module: thrown by the calls that have no `PushOutcome` (minting, batch
/// status, labels). Its `description` never holds a token or an API key: messages from the
/// server are scrubbed of the secret that was sent.
public struct APIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a small closed set.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String {
            case unauthorized, rateLimited = "rate limited", invalidInput = "invalid input", notFound = "not found"
            case server = "server error", transport = "transport error", unexpectedResponse = "unexpected response"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// 401: wrong API key, or a missing/expired/revoked token.
        public static let unauthorized = Code(.unauthorized)
        /// 429: over a limit (for minting: 10 tokens per 30 minutes).
        public static let rateLimited = Code(.rateLimited)
        /// 400: the request is wrong.
        public static let invalidInput = Code(.invalidInput)
        /// 404: unknown client account or batch.
        public static let notFound = Code(.notFound)
        /// 5xx or another status the client does not expect.
        public static let server = Code(.server)
        /// No answer: connection refused or reset, timeout.
        public static let transport = Code(.transport)
        /// A 2xx answer whose body could not be read.
        public static let unexpectedResponse = Code(.unexpectedResponse)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// The HTTP status, when there was an answer.
    public var httpStatus: Int?
    /// The server's message or the transport failure, without secrets.
    public var message: String
    /// Milliseconds from a `Retry-After` header on a 429, if any.
    public var retryAfterMs: Int64?

    /// Creates an error.
    public init(code: Code, httpStatus: Int? = nil, message: String, retryAfterMs: Int64? = nil) {
        self.code = code
        self.httpStatus = httpStatus
        self.message = message
        self.retryAfterMs = retryAfterMs
    }

    public var description: String {
        let status = httpStatus.map { " (HTTP \($0))" } ?? ""
        return "API \(code)\(status): \(message)"
    }

    /// The error for a non-2xx answer.
    static func from(status: Int, body: ParsedBody, retryAfter: String?, scrubbing secrets: [String]) -> APIError {
        let code: Code
        switch status {
        case 400, 422: code = .invalidInput
        case 401, 403: code = .unauthorized
        case 404: code = .notFound
        case 429: code = .rateLimited
        default: code = .server
        }
        return APIError(
            code: code,
            httpStatus: status,
            message: scrub(body.reason ?? "no message", secrets: secrets),
            retryAfterMs: status == 429 ? retryAfter.flatMap(OutcomeClassifier.parseRetryAfter) : nil
        )
    }

    /// `text` with every occurrence of each (non-empty) secret replaced by `<redacted>`.
    static func scrub(_ text: String, secrets: [String]) -> String {
        var result = text
        for secret in secrets where !secret.isEmpty {
            result = result.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return result
    }
}
