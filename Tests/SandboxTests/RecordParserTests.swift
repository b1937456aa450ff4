import CallRecordAPI
import Foundation
import Planning
@testable import Sandbox
import Testing

/// The sandbox's fast body parser accepts only what `JSONDecoder` decodes to the same record,
/// and declines everything else (the decoder then answers).
@Suite struct RecordParserTests {
    static func fast(_ json: String, _ naming: FieldNaming = .v1) -> CallRecord? {
        Array(json.utf8).withUnsafeBytes { (naming == .v1 ? RecordParser.v1 : RecordParser.v2).parse($0) }
    }

    static func decoded(_ json: String, _ naming: FieldNaming = .v1) -> CallRecord? {
        switch naming {
        case .v1: try? JSONDecoder().decode(V1Record.self, from: Data(json.utf8)).record
        case .v2: try? JSONDecoder().decode(V2Record.self, from: Data(json.utf8)).record
        }
    }

    static let label = "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01"

    @Test(arguments: [
        #"{"caller":"919876543210","receiver":"14155550123","starts_at":1,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{ "caller" : "1", "receiver":"2", "starts_at": -5, "ends_at": 0, "label_id": "0B7D7A3E-1F7E-4B8E-9A0C-2F6D1C9E8A01", "label_name": null, "call_reason": "Héllo wörld 🚚" }"#,
        #"{"extra":true,"n":12,"s":"x","z":null,"caller":"1","receiver":"2","starts_at":9223372036854775807,"ends_at":2,"label_id":"\#(label)","label_name":""}"#,
        "\n\t{\"caller\":\"1\",\"receiver\":\"2\",\"starts_at\":1,\"ends_at\":2,\"label_id\":\"\(label)\"}\r\n",
    ])
    func plainBodiesParseExactlyAsTheDecoderDoes(json: String) throws {
        let fast = try #require(Self.fast(json))
        #expect(fast == Self.decoded(json))
    }

    @Test func v2Names() throws {
        let json = #"{"caller_number":"1","receiver_number":"2","starts_at":1,"ends_at":2,"label_id":"\#(Self.label)","dynamic_label_name":"Acme","dynamic_call_reason":"Your parcel today"}"#
        let fast = try #require(Self.fast(json, .v2))
        #expect(fast == Self.decoded(json, .v2))
        #expect(fast.labelName == "Acme")
        #expect(Self.fast(json, .v1) == nil)
    }

    @Test(arguments: [
        #"{"caller":"1","receiver":"2","starts_at":1,"ends_at":2,"label_id":"\#(label)","label_name":"A \"quoted\" name"}"#,
        #"{"caller":"1","receiver":"2","starts_at":1.0,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{"caller":"1","receiver":"2","starts_at":1e3,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{"caller":"1","receiver":"2","starts_at":01,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{"caller":"1","receiver":"2","starts_at":9223372036854775808,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{"caller":1,"receiver":"2","starts_at":1,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{"caller":"1","caller":"3","receiver":"2","starts_at":1,"ends_at":2,"label_id":"\#(label)"}"#,
        #"{"caller":"1","receiver":"2","starts_at":1,"ends_at":2,"label_id":"not-a-uuid"}"#,
        #"{"caller":"1","receiver":"2","starts_at":1,"ends_at":2}"#,
        #"{"caller":"1","receiver":"2","starts_at":1,"ends_at":2,"label_id":"\#(label)","extra":{"a":1}}"#,
        #"{"caller":"1","receiver":"2","starts_at":1,"ends_at":2,"label_id":"\#(label)"} trailing"#,
        #"{"caller":"1","receiver":"2","starts_at":1,"ends_at":2,"label_id":"\#(label)",}"#,
        #"[]"#,
        "",
    ])
    func everythingElseIsDeclined(json: String) {
        #expect(Self.fast(json) == nil)
    }

    @Test func uuidTextRoundTrips() throws {
        let uuid = try #require(UUID(uuidString: Self.label))
        #expect(RecordParser.lowercaseText(uuid) == Self.label)
        let random = UUID()
        #expect(RecordParser.lowercaseText(random) == random.uuidString.lowercased())
    }
}
