@testable import CallRecordAPI
import Foundation
import Planning
import Testing

/// `RecordFields.json`, the push body written directly, against what `JSONEncoder` makes of the
/// same record: the same JSON object, whatever the texts hold.
@Suite struct RecordJSONTests {
    static let label = UUID(uuidString: "0B7D7A3E-1F7E-4B8E-9A0C-2F6D1C9E8A01")!

    /// Texts a display name or call reason may hold: quotes, backslashes, every control
    /// character, DEL, JSON's and JavaScript's line separators, combining marks, emoji, a slash.
    static let texts: [String?] = [
        nil, "", "Acme Deliveries", #"say "hi""#, #"C:\path\"#, "a/b", "\u{7F}", "\u{2028}\u{2029}", "e\u{301}",
        "Zustellung 🚚 heute", "中文 العربية", String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) }), "\t\n\r",
    ]

    static func object(_ data: Data) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }

    @Test("v1 and v2 bodies are the objects JSONEncoder writes, for every text and optional", arguments: [FieldNaming.v1, .v2])
    func sameObjectAsJSONEncoder(naming: FieldNaming) throws {
        for labelName in Self.texts {
            for callReason in Self.texts {
                let record = CallRecord(caller: "919876543210", receiver: "14155550123", startsAt: 1_764_000_000_000,
                                        endsAt: -1, labelID: Self.label, labelName: labelName, callReason: callReason)
                let written = Data(RecordFields.json(record, naming: naming))
                let encoded = naming == .v1 ? try JSONEncoder().encode(V1Record(record)) : try JSONEncoder().encode(V2Record(record))
                #expect(try Self.object(written) == Self.object(encoded), "\(String(decoding: written, as: UTF8.self))")
                let decoded = naming == .v1 ? try JSONDecoder().decode(V1Record.self, from: written).record
                                            : try JSONDecoder().decode(V2Record.self, from: written).record
                #expect(decoded == record)
            }
        }
    }

    @Test("the body is plain JSON: keys in the API's order, control characters escaped, no optional key without a value")
    func exactBytes() {
        let record = CallRecord(caller: "919876543210", receiver: "14155550123", startsAt: 1, endsAt: 2, labelID: Self.label,
                                labelName: nil, callReason: "a \"b\"\\\n\u{1}")
        #expect(String(decoding: RecordFields.json(record, naming: .v1), as: UTF8.self)
            == #"{"caller":"919876543210","receiver":"14155550123","starts_at":1,"ends_at":2,"label_id":"0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01","call_reason":"a \"b\"\\\n\u0001"}"#)
    }
}

/// `OutcomeClassifier.mayReportFailure`, which lets a 2xx answer skip parsing: it must never
/// pass over a body in which `ParsedBody` finds a failure.
@Suite struct SuccessFastPathTests {
    /// Bodies of every shape the classifier reads, with statuses spelled in many ways, escaped too.
    static var bodies: [String] {
        let statuses = ["success", "Success", "SUCCESS", "ok", "error", "Error", "ERROR", "failed", "Failed", "FAILED", "failure",
                        "FaIlUrE", #"\u0065rror"#, #"\u0046AILED"#, #"f\u0061il"#, "errors", "pending", "", "erred"]
        var bodies: [String] = ["", "{}", "null", "[]", #"{"message": "Records Uploaded Successfully. BatchID: 1"}"#]
        for status in statuses {
            bodies.append(#"{"status": "\#(status)", "message": "Records Uploaded Successfully. BatchID: 1"}"#)
            bodies.append(#"{"status_info": {"status": "\#(status)", "message": "Record processed"}}"#)
            bodies.append(#"{"st\u0061tus": "\#(status)"}"#)
            bodies.append(#"{"status_info": {"st\u0061tus": "\#(status)", "field": "receiver_number", "message": "m"}}"#)
        }
        return bodies
    }

    @Test("no body in which ParsedBody finds a failure is taken for a plain success; the API's success bodies are")
    func neverHidesAFailure() {
        var failures = 0
        for text in Self.bodies {
            let body = Data(text.utf8)
            if ParsedBody(body).failureReason != nil {
                failures += 1
                #expect(OutcomeClassifier.mayReportFailure(body), "\(text)")
            }
        }
        #expect(failures >= 30, "the corpus holds failures in every spelling: \(failures)")
        #expect(!OutcomeClassifier.mayReportFailure(Data(#"{"status": "success", "message": "Records Uploaded Successfully. BatchID: 1"}"#.utf8)))
        #expect(!OutcomeClassifier.mayReportFailure(Data(#"{"status_info": {"status": "success", "message": "Record processed successfully"}}"#.utf8)))
        #expect(!OutcomeClassifier.mayReportFailure(Data()))
    }

    @Test("a failure status in a 200, spelled in any case or escaped, is still classified as one")
    func failuresInA200AreStillFound() {
        for text in [#"{"status": "FAILED", "message": "Failed to push"}"#, #"{"status": "\u0066ailed", "message": "Failed to push"}"#,
                     #"{"status_info": {"status": "Error", "field": "receiver_number", "message": "Not a Truecaller user"}}"#] {
            #expect(OutcomeClassifier.classify(status: 200, retryAfter: nil, body: Data(text.utf8)) != .accepted, "\(text)")
        }
    }
}
