public import Foundation

/// One call-personalisation record, independent of the transport that carries it.
///
/// `startsAt` and `endsAt` are epoch milliseconds, the unit of the API. `labelName` and
/// `callReason` are optional: the API then shows the label's own name and no reason.
/// The API's field names differ per transport (v1 `caller`, v2 `caller_number`, …); the
/// request models of `CallRecordAPI` do that mapping.
public struct CallRecord: Sendable, Hashable, Codable {
    /// Phone number of the business line that calls: country code and digits, no "+".
    public var caller: String
    /// Phone number of the person called: country code and digits, no "+".
    public var receiver: String
    /// Epoch ms at which the personalisation starts to show.
    public var startsAt: Int64
    /// Epoch ms at which it stops; at most 24 h after `startsAt`.
    public var endsAt: Int64
    /// The dynamic label (of the client account) shown as caller ID.
    public var labelID: UUID
    /// Display name overriding the label's name; `nil` uses the label's name.
    public var labelName: String?
    /// The call reason shown to the receiver; `nil` shows none.
    public var callReason: String?

    /// Creates a record; nothing is validated here (see `RecordValidator`).
    public init(
        caller: String,
        receiver: String,
        startsAt: Int64,
        endsAt: Int64,
        labelID: UUID,
        labelName: String? = nil,
        callReason: String? = nil
    ) {
        self.caller = caller
        self.receiver = receiver
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.labelID = labelID
        self.labelName = labelName
        self.callReason = callReason
    }
}
