public import Foundation

// The record rules of the call-personalisation API (shared/API.md), in one place: the planner
// checks records with them before any rate budget is spent, the client before sending, and
// the sandbox answers 400 with them. A rule that differs here differs everywhere.
//
// Decisions where the documentation is silent:
// - `ends_at` "not before now" means `ends_at >= now` is valid: a record ending exactly now
//   is accepted; one millisecond earlier is not.
// - "24 h apart" is inclusive: `ends_at - starts_at == 86_400_000` is valid.
// - Phone numbers also need 8 to 15 digits and must not start with 0 (E.164 without the "+"),
//   the same rule the database applies on input.
// - "Characters" are Unicode scalar values (`unicodeScalars.count`, PostgreSQL `char_length`).
// - "No leading or trailing spaces" covers every Unicode white-space scalar, not only U+0020.
// - An empty v1 `label_name` is within "at most 40" and therefore valid.

/// The field names of a transport: v1 (the seed: `caller`, `label_name`, …) or v2 (`caller_number`,
/// `dynamic_label_name`, …; the batch endpoint uses v2 records).
public enum FieldNaming: Sendable, Hashable {
    case v1
    case v2

    /// API field name of the caller's phone number.
    public var caller: String { self == .v1 ? "caller" : "caller_number" }
    /// API field name of the receiver's phone number.
    public var receiver: String { self == .v1 ? "receiver" : "receiver_number" }
    /// API field name of the start instant.
    public var startsAt: String { "starts_at" }
    /// API field name of the end instant.
    public var endsAt: String { "ends_at" }
    /// API field name of the label id.
    public var labelID: String { "label_id" }
    /// API field name of the display-name override.
    public var labelName: String { self == .v1 ? "label_name" : "dynamic_label_name" }
    /// API field name of the call reason.
    public var callReason: String { self == .v1 ? "call_reason" : "dynamic_call_reason" }
}

/// What the validator needs to know about a label: whose it is and whether it is dynamic.
public struct LabelInfo: Sendable, Hashable {
    /// The label's id (`label_id` in records).
    public var id: UUID
    /// The client account that owns the label.
    public var clientAccountID: UUID
    /// The label's own name, shown when a record has no `label_name`.
    public var name: String
    /// Only dynamic labels may be used in call records.
    public var isDynamic: Bool

    /// Creates label information.
    public init(id: UUID, clientAccountID: UUID, name: String, isDynamic: Bool) {
        self.id = id
        self.clientAccountID = clientAccountID
        self.name = name
        self.isDynamic = isDynamic
    }
}

/// One broken rule: the API field it concerns (named for the transport) and the rule in one sentence.
public struct RecordViolation: Sendable, Hashable, CustomStringConvertible {
    /// API field name, e.g. `caller` (v1) or `caller_number` (v2).
    public var field: String
    /// The rule that was broken, e.g. `must be 10 to 100 characters`.
    public var rule: String

    /// Creates a violation.
    public init(field: String, rule: String) {
        self.field = field
        self.rule = rule
    }

    /// `<field>: <rule>` — the sandbox's 400 message and the reason stored for a rejected record.
    public var description: String { "\(field): \(rule)" }
}

/// The limits the validator applies; `documented` holds the values of shared/API.md.
public struct RecordRules: Sendable, Hashable {
    /// Longest allowed `ends_at - starts_at` in ms, inclusive. Default 24 h.
    public var maxSpanMs: Int64
    /// Allowed number of digits of a phone number. Default 8...15.
    public var phoneDigits: ClosedRange<Int>
    /// Longest v1 `label_name` in characters. Default 40.
    public var maxLabelName: Int
    /// Allowed v2 `dynamic_label_name` length in characters. Default 3...40.
    public var v2LabelName: ClosedRange<Int>
    /// Allowed call-reason length in characters. Default 10...100.
    public var callReasonLength: ClosedRange<Int>
    /// Characters a call reason must not contain. Default `! @ # $ % ^ & * ( ) _ + /`.
    public var forbiddenInCallReason: String
    /// Characters a call reason must not start or end with. Default `. , -`.
    public var notAtCallReasonEdges: String

    /// Creates rules; every parameter defaults to the documented value.
    public init(
        maxSpanMs: Int64 = 86_400_000,
        phoneDigits: ClosedRange<Int> = 8...15,
        maxLabelName: Int = 40,
        v2LabelName: ClosedRange<Int> = 3...40,
        callReasonLength: ClosedRange<Int> = 10...100,
        forbiddenInCallReason: String = "!@#$%^&*()_+/",
        notAtCallReasonEdges: String = ".,-"
    ) {
        self.maxSpanMs = maxSpanMs
        self.phoneDigits = phoneDigits
        self.maxLabelName = maxLabelName
        self.v2LabelName = v2LabelName
        self.callReasonLength = callReasonLength
        self.forbiddenInCallReason = forbiddenInCallReason
        self.notAtCallReasonEdges = notAtCallReasonEdges
    }

    /// The rules of shared/API.md.
    public static let documented = RecordRules()
}

/// Checks call records against the API's rules; used by the planner, the client and the sandbox.
public struct RecordValidator: Sendable {
    /// The limits applied.
    public var rules: RecordRules

    /// Creates a validator; `rules` defaults to the documented ones.
    public init(rules: RecordRules = .documented) {
        self.rules = rules
    }

    /// Every rule `record` breaks, in field order; empty when the API would accept it.
    ///
    /// - Parameters:
    ///   - naming: the transport's field names (v2 also requires a label name of at least 3 characters).
    ///   - clientAccountID: the account the record is pushed for; the label must be its own.
    ///   - now: the current instant in epoch ms (`ends_at` must not be before it).
    ///   - label: the label `record.labelID` refers to, or `nil` when no such label is known.
    public func validate(
        _ record: CallRecord,
        naming: FieldNaming,
        clientAccountID: UUID,
        now: Int64,
        label: LabelInfo?
    ) -> [RecordViolation] {
        var violations = numberAndTimeViolations(record, naming: naming, now: now)
        if let violation = labelViolation(record, naming: naming, clientAccountID: clientAccountID, label: label) {
            violations.append(violation)
        }
        return violations + textViolations(record, naming: naming)
    }

    /// Every rule `record` breaks apart from the label's existence, kind and owner — for callers
    /// that check the label elsewhere (e.g. the database's foreign key).
    public func validateFields(_ record: CallRecord, naming: FieldNaming, now: Int64) -> [RecordViolation] {
        numberAndTimeViolations(record, naming: naming, now: now) + textViolations(record, naming: naming)
    }

    private func numberAndTimeViolations(_ record: CallRecord, naming: FieldNaming, now: Int64) -> [RecordViolation] {
        var violations: [RecordViolation] = []
        if let rule = phoneRule(record.caller) {
            violations.append(RecordViolation(field: naming.caller, rule: rule))
        }
        if let rule = phoneRule(record.receiver) {
            violations.append(RecordViolation(field: naming.receiver, rule: rule))
        }
        if record.startsAt >= record.endsAt {
            violations.append(RecordViolation(field: naming.startsAt, rule: "must be before ends_at"))
        }
        if record.endsAt < now {
            violations.append(RecordViolation(field: naming.endsAt, rule: "must not be before now"))
        }
        if record.startsAt < record.endsAt, record.endsAt - record.startsAt > rules.maxSpanMs {
            violations.append(RecordViolation(field: naming.endsAt, rule: "must be at most \(spanText) after starts_at"))
        }
        return violations
    }

    private func textViolations(_ record: CallRecord, naming: FieldNaming) -> [RecordViolation] {
        var violations: [RecordViolation] = []
        if let name = record.labelName {
            let length = name.unicodeScalars.count
            switch naming {
            case .v1 where length > rules.maxLabelName:
                violations.append(RecordViolation(field: naming.labelName, rule: "must be at most \(rules.maxLabelName) characters"))
            case .v2 where !rules.v2LabelName.contains(length):
                violations.append(RecordViolation(
                    field: naming.labelName,
                    rule: "must be \(rules.v2LabelName.lowerBound) to \(rules.v2LabelName.upperBound) characters"
                ))
            default:
                break
            }
        }
        if let reason = record.callReason {
            for rule in callReasonRules(reason) {
                violations.append(RecordViolation(field: naming.callReason, rule: rule))
            }
        }
        return violations
    }

    /// The label rule alone: known, owned by `clientAccountID`, dynamic.
    public func labelViolation(
        _ record: CallRecord,
        naming: FieldNaming,
        clientAccountID: UUID,
        label: LabelInfo?
    ) -> RecordViolation? {
        guard let label, label.id == record.labelID else {
            return RecordViolation(field: naming.labelID, rule: "must be a known label")
        }
        if label.clientAccountID != clientAccountID {
            return RecordViolation(field: naming.labelID, rule: "must be a label of this client")
        }
        if !label.isDynamic {
            return RecordViolation(field: naming.labelID, rule: "must be a dynamic label")
        }
        return nil
    }

    // MARK: - Rules

    private var spanText: String {
        rules.maxSpanMs % 3_600_000 == 0 ? "\(rules.maxSpanMs / 3_600_000) hours" : "\(rules.maxSpanMs) ms"
    }

    private func phoneRule(_ phone: String) -> String? {
        let scalars = phone.unicodeScalars
        if scalars.contains("+") {
            return "must not contain \"+\": write the country code and number as digits only"
        }
        if scalars.isEmpty || !scalars.allSatisfy({ $0.value >= 0x30 && $0.value <= 0x39 }) {
            return "must be a phone number with country code, digits only"
        }
        if !rules.phoneDigits.contains(scalars.count) {
            return "must have \(rules.phoneDigits.lowerBound) to \(rules.phoneDigits.upperBound) digits"
        }
        if scalars.first == "0" {
            return "must start with the country code, not 0"
        }
        return nil
    }

    private func callReasonRules(_ reason: String) -> [String] {
        var broken: [String] = []
        let scalars = Array(reason.unicodeScalars)
        let forbidden = rules.forbiddenInCallReason.unicodeScalars
        let edges = rules.notAtCallReasonEdges.unicodeScalars
        if !rules.callReasonLength.contains(scalars.count) {
            broken.append("must be \(rules.callReasonLength.lowerBound) to \(rules.callReasonLength.upperBound) characters")
        }
        if scalars.contains(where: { forbidden.contains($0) }) {
            let list = forbidden.map { String($0) }.joined(separator: " ")
            broken.append("must not contain any of \(list)")
        }
        if let first = scalars.first, let last = scalars.last {
            if first.properties.isWhitespace || last.properties.isWhitespace {
                broken.append("must not start or end with a space")
            }
            if edges.contains(first) || edges.contains(last) {
                let list = edges.map { "\"\($0)\"" }.joined(separator: ", ")
                broken.append("must not start or end with \(list)")
            }
        }
        return broken
    }
}
