import Foundation
import Planning
import Testing

/// The record rules of shared/API.md, each at its edges, for both field namings.
@Suite struct RecordValidatorTests {
    static let client = UUID(uuidString: "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10")!
    static let otherClient = UUID(uuidString: "11111111-2222-4333-8444-555555555555")!
    static let labelID = UUID(uuidString: "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01")!
    static let now: Int64 = 1_752_130_745_000
    static let hour: Int64 = 3_600_000

    let validator = RecordValidator()
    let label = LabelInfo(id: labelID, clientAccountID: client, name: "Acme Deliveries", isDynamic: true)

    func record(
        caller: String = "919876543210",
        receiver: String = "14155550123",
        startsAt: Int64 = now,
        endsAt: Int64 = now + hour,
        labelName: String? = nil,
        callReason: String? = nil
    ) -> CallRecord {
        CallRecord(
            caller: caller, receiver: receiver, startsAt: startsAt, endsAt: endsAt,
            labelID: Self.labelID, labelName: labelName, callReason: callReason
        )
    }

    func check(_ record: CallRecord, _ naming: FieldNaming = .v1, label: LabelInfo?? = nil) -> [String] {
        let info: LabelInfo? = label ?? self.label
        return validator.validate(record, naming: naming, clientAccountID: Self.client, now: Self.now, label: info)
            .map(\.description)
    }

    @Test func validRecordPassesBothNamings() {
        let good = record(labelName: "Acme", callReason: "Your parcel is on its way")
        #expect(check(good, .v1) == [])
        #expect(check(good, .v2) == [])
    }

    @Test func phoneWithPlusIsRejectedNamingTheField() {
        #expect(check(record(caller: "+919876543210")) == [
            "caller: must not contain \"+\": write the country code and number as digits only",
        ])
        #expect(check(record(receiver: "+14155550123"), .v2).map { $0.hasPrefix("receiver_number: must not contain \"+\"") } == [true])
    }

    @Test(arguments: ["91 98765 43210", "91-9876543210", "", "٩١٩٨٧٦٥٤٣٢١٠", "9198765432a0"])
    func phoneWithNonDigitsIsRejected(phone: String) {
        #expect(check(record(caller: phone)) == ["caller: must be a phone number with country code, digits only"])
    }

    @Test func phoneDigitCountAndLeadingZero() {
        #expect(check(record(caller: "1234567")) == ["caller: must have 8 to 15 digits"])
        #expect(check(record(caller: "12345678")) == [])
        #expect(check(record(caller: "123456789012345")) == [])
        #expect(check(record(caller: "1234567890123456")) == ["caller: must have 8 to 15 digits"])
        #expect(check(record(receiver: "0919876543210")) == ["receiver: must start with the country code, not 0"])
    }

    @Test func spanOfExactly24HoursIsAcceptedAndOneMillisecondMoreRejected() {
        #expect(check(record(startsAt: Self.now, endsAt: Self.now + 24 * Self.hour)) == [])
        #expect(check(record(startsAt: Self.now, endsAt: Self.now + 24 * Self.hour + 1)) == [
            "ends_at: must be at most 24 hours after starts_at",
        ])
    }

    @Test func endsAtNotBeforeNow() {
        #expect(check(record(startsAt: Self.now - Self.hour, endsAt: Self.now)) == [])
        #expect(check(record(startsAt: Self.now - Self.hour, endsAt: Self.now - 1)) == ["ends_at: must not be before now"])
    }

    @Test func startsAtMustBeBeforeEndsAt() {
        #expect(check(record(startsAt: Self.now + Self.hour, endsAt: Self.now + Self.hour)) == ["starts_at: must be before ends_at"])
        #expect(check(record(startsAt: Self.now + 2 * Self.hour, endsAt: Self.now + Self.hour)) == ["starts_at: must be before ends_at"])
        #expect(check(record(startsAt: Self.now + Self.hour - 1, endsAt: Self.now + Self.hour)) == [])
    }

    @Test func labelMustBeKnownOwnAndDynamic() {
        let unknown = validator.validate(record(), naming: .v1, clientAccountID: Self.client, now: Self.now, label: nil)
        #expect(unknown.map(\.description) == ["label_id: must be a known label"])
        let foreign = LabelInfo(id: Self.labelID, clientAccountID: Self.otherClient, name: "Other", isDynamic: true)
        #expect(check(record(), label: foreign) == ["label_id: must be a label of this client"])
        let staticLabel = LabelInfo(id: Self.labelID, clientAccountID: Self.client, name: "Static", isDynamic: false)
        #expect(check(record(), label: staticLabel) == ["label_id: must be a dynamic label"])
        let mismatched = LabelInfo(id: UUID(), clientAccountID: Self.client, name: "Acme", isDynamic: true)
        #expect(check(record(), label: mismatched) == ["label_id: must be a known label"])
    }

    @Test func v1LabelNameAtMost40Characters() {
        #expect(check(record(labelName: String(repeating: "a", count: 40))) == [])
        #expect(check(record(labelName: String(repeating: "a", count: 41))) == ["label_name: must be at most 40 characters"])
        #expect(check(record(labelName: "")) == [])
        // Characters are Unicode scalars: 40 "é" written as e + combining acute are 80 scalars.
        #expect(check(record(labelName: String(repeating: "\u{E9}", count: 40))) == [])
        #expect(check(record(labelName: String(repeating: "e\u{301}", count: 20))) == [])
        #expect(check(record(labelName: String(repeating: "e\u{301}", count: 21))) == ["label_name: must be at most 40 characters"])
    }

    @Test func v2LabelNameNeeds3To40Characters() {
        #expect(check(record(labelName: "ab"), .v2) == ["dynamic_label_name: must be 3 to 40 characters"])
        #expect(check(record(labelName: "abc"), .v2) == [])
        #expect(check(record(labelName: String(repeating: "a", count: 40)), .v2) == [])
        #expect(check(record(labelName: String(repeating: "a", count: 41)), .v2) == ["dynamic_label_name: must be 3 to 40 characters"])
        #expect(check(record(labelName: "ab"), .v1) == [])
    }

    @Test func callReason9To101Characters() {
        let rule = "must be 10 to 100 characters"
        #expect(check(record(callReason: String(repeating: "a", count: 9))) == ["call_reason: \(rule)"])
        #expect(check(record(callReason: String(repeating: "a", count: 10))) == [])
        #expect(check(record(callReason: String(repeating: "a", count: 100))) == [])
        #expect(check(record(callReason: String(repeating: "a", count: 101))) == ["call_reason: \(rule)"])
        #expect(check(record(callReason: String(repeating: "a", count: 9)), .v2) == ["dynamic_call_reason: \(rule)"])
        // Emoji flags are two scalars each: 5 flags are 10 characters.
        #expect(check(record(callReason: String(repeating: "🇮🇳", count: 5))) == [])
    }

    @Test(arguments: Array("!@#$%^&*()_+/"))
    func callReasonForbiddenCharacter(character: Character) {
        let reason = "Delivery \(character) today"
        #expect(check(record(callReason: reason)) == ["call_reason: must not contain any of ! @ # $ % ^ & * ( ) _ + /"])
    }

    @Test(arguments: [".", ",", "-"])
    func callReasonPunctuationAtEdges(mark: String) {
        let rule = "call_reason: must not start or end with \".\", \",\", \"-\""
        #expect(check(record(callReason: "\(mark)Delivery today")) == [rule])
        #expect(check(record(callReason: "Delivery today\(mark)")) == [rule])
        #expect(check(record(callReason: "Delivery\(mark) today")) == [])
    }

    @Test func callReasonLeadingOrTrailingSpace() {
        let rule = "call_reason: must not start or end with a space"
        #expect(check(record(callReason: " Delivery today")) == [rule])
        #expect(check(record(callReason: "Delivery today ")) == [rule])
        #expect(check(record(callReason: "Delivery\ttoday")) == [])
    }

    @Test func everyBrokenRuleIsReportedInFieldOrder() {
        let bad = CallRecord(
            caller: "+1", receiver: "x", startsAt: Self.now, endsAt: Self.now - 1,
            labelID: Self.labelID, labelName: String(repeating: "n", count: 41), callReason: "short!"
        )
        let fields = validator.validate(bad, naming: .v2, clientAccountID: Self.client, now: Self.now, label: nil).map(\.field)
        #expect(fields == [
            "caller_number", "receiver_number", "starts_at", "ends_at", "label_id",
            "dynamic_label_name", "dynamic_call_reason", "dynamic_call_reason",
        ])
    }

    @Test func validateFieldsSkipsTheLabelCheck() {
        #expect(validator.validateFields(record(), naming: .v1, now: Self.now) == [])
    }
}
