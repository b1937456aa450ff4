public import Foundation

/// What became of one push, decided from the HTTP answer (or its absence). The dispatcher acts
/// on it: finish, fix the data, slow down, change token, or retry later.
public enum PushOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The API took the record (or, for a batch, the request).
    case accepted
    /// Permanent: the record is wrong, or the receiver cannot be personalised. Do not retry as is.
    case rejected(reason: String)
    /// HTTP 429: the token is over its limit. `retryAfterMs` comes from a `Retry-After` header, if any.
    case rateLimited(retryAfterMs: Int64?)
    /// HTTP 401: the token is missing, expired or revoked.
    case unauthorized
    /// Nothing was decided for this record (5xx, reset, timeout, "Failed to push"): retry later.
    case transient(reason: String)

    public var description: String {
        switch self {
        case .accepted: "accepted"
        case .rejected(let reason): "rejected: \(reason)"
        case .rateLimited(let retryAfterMs): retryAfterMs.map { "rate limited, retry after \($0) ms" } ?? "rate limited"
        case .unauthorized: "unauthorized"
        case .transient(let reason): "transient: \(reason)"
        }
    }

    /// Short name for metrics and audit columns: `accepted`, `rejected`, `rate_limited`, `unauthorized`, `transient`.
    public var kind: String {
        switch self {
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .rateLimited: "rate_limited"
        case .unauthorized: "unauthorized"
        case .transient: "transient"
        }
    }
}

/// The documented failure vocabulary of shared/API.md: "Invalid input", "Not a Truecaller user",
/// "OS not supported" and "App version not supported" are permanent; "Failed to push" is transient.
/// Unknown reasons are treated as permanent rejections (the server said no to this record).
public enum OutcomeVocabulary {
    /// Reasons documented as permanent for the record or its receiver.
    public static let permanent = ["Invalid input", "Not a Truecaller user", "OS not supported", "App version not supported"]
    /// Reasons documented as transient on Truecaller's side.
    public static let transient = ["Failed to push"]

    /// `.transient` if `reason` contains a transient phrase (case-insensitive), else `.rejected`.
    public static func outcome(forFailure reason: String) -> PushOutcome {
        let lowered = reason.lowercased()
        if transient.contains(where: { lowered.contains($0.lowercased()) }) {
            return .transient(reason: reason)
        }
        return .rejected(reason: reason)
    }
}

/// Turns an HTTP answer of a push endpoint into a `PushOutcome`; pure, so every rule is unit-tested.
///
/// - 2xx: accepted, unless the body says `"status": "error"/"failed"` (v1) or
///   `"status_info": {"status": "error"/"failed"}` (v2); then as a failure reason below.
/// - 401: unauthorized. 429: rate limited (`Retry-After` in delta-seconds honoured).
/// - 403: transient — the account, not the record or the token, is refused; minting a new token
///   would not help and the record is not wrong, so it waits (and eventually expires with a reason).
/// - 408, 5xx and any other unexpected status: transient.
/// - other 4xx: the body's message (or slug) is the reason; "Failed to push" makes it transient,
///   anything else is a permanent rejection.
public enum OutcomeClassifier {
    /// Classifies one answer.
    public static func classify(status: Int, retryAfter: String?, body: Data) -> PushOutcome {
        // Most answers are successes: one that cannot name a failure is not parsed at all.
        if (200..<300).contains(status) && !mayReportFailure(body) { return .accepted }
        let parsed = ParsedBody(body)
        switch status {
        case 200..<300:
            if let failure = parsed.failureReason {
                return OutcomeVocabulary.outcome(forFailure: failure)
            }
            return .accepted
        case 401:
            return .unauthorized
        case 429:
            return .rateLimited(retryAfterMs: retryAfter.flatMap(parseRetryAfter))
        case 403:
            return .transient(reason: "HTTP 403: \(parsed.reason ?? "forbidden")")
        case 408:
            return .transient(reason: "HTTP 408: request timeout")
        case 400..<500:
            return OutcomeVocabulary.outcome(forFailure: parsed.reason ?? "HTTP \(status)")
        case 500..<600:
            return .transient(reason: "HTTP \(status)\(parsed.reason.map { ": \($0)" } ?? "")")
        default:
            return .transient(reason: "unexpected HTTP \(status)")
        }
    }

    /// Whether `body` could hold a failure status (`ParsedBody.failureReason`: "error", "failed"
    /// or "failure", in any case). Without a backslash (a JSON escape could spell any letter),
    /// such a status needs the letters "err" or "fail" in the body as they stand; a body with
    /// neither says success, or nothing, and `classify` needs not parse it.
    static func mayReportFailure(_ body: Data) -> Bool {
        // The last four bytes read, lower-cased (`| 0x20` lower-cases an ASCII letter and turns
        // no other byte into one).
        var window: UInt32 = 0
        for byte in body {
            if byte == UInt8(ascii: "\\") { return true }
            window = window << 8 | UInt32(byte | 0x20)
            if window & 0xFF_FFFF == 0x65_7272 || window == 0x6661_696C { return true }  // "err", "fail"
        }
        return false
    }

    /// Milliseconds from a `Retry-After` value in delta-seconds (`"2"`, `"0.5"`); `nil` for an
    /// HTTP-date or garbage (the caller's back-off applies then).
    public static func parseRetryAfter(_ value: String) -> Int64? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard let seconds = Double(trimmed), seconds.isFinite, seconds >= 0, seconds < 86_400 else { return nil }
        return Int64((seconds * 1000).rounded(.up))
    }
}

/// The parts of any API body that matter for classification, read leniently.
struct ParsedBody {
    var slug: String?
    var message: String?
    var status: String?
    var field: String?

    init(_ body: Data) {
        guard !body.isEmpty,
              let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return }
        slug = object["slug"] as? String
        if let info = object["status_info"] as? [String: Any] {
            status = info["status"] as? String
            message = info["message"] as? String
            field = info["field"] as? String
        } else {
            status = object["status"] as? String
            message = object["message"] as? String
            field = object["field"] as? String
        }
    }

    /// The best human-readable reason: `field: message`, message, or slug.
    var reason: String? {
        if let message, !message.isEmpty {
            if let field, !field.isEmpty, !message.hasPrefix(field) { return "\(field): \(message)" }
            return message
        }
        return slug
    }

    /// A failure reported inside a 2xx answer.
    var failureReason: String? {
        guard let status = status?.lowercased(), ["error", "failed", "failure"].contains(status) else { return nil }
        return reason ?? status
    }
}
