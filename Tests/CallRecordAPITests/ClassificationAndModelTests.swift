import CallRecordAPI
import Foundation
import Planning
import Testing

@Suite struct OutcomeClassifierTests {
    static func body(_ json: String) -> Data { Data(json.utf8) }

    @Test func successBodies() {
        #expect(OutcomeClassifier.classify(
            status: 200, retryAfter: nil,
            body: Self.body(#"{"status": "success", "message": "Records Uploaded Successfully. BatchID: 1"}"#)
        ) == .accepted)
        #expect(OutcomeClassifier.classify(
            status: 200, retryAfter: nil,
            body: Self.body(#"{"status_info": {"status": "success", "message": "Record processed successfully"}}"#)
        ) == .accepted)
        #expect(OutcomeClassifier.classify(status: 204, retryAfter: nil, body: Data()) == .accepted)
    }

    @Test func failuresInsideA200() {
        #expect(OutcomeClassifier.classify(
            status: 200, retryAfter: nil,
            body: Self.body(#"{"status_info": {"status": "error", "field": "receiver_number", "message": "Not a Truecaller user"}}"#)
        ) == .rejected(reason: "receiver_number: Not a Truecaller user"))
        #expect(OutcomeClassifier.classify(
            status: 200, retryAfter: nil, body: Self.body(#"{"status": "failed", "message": "Failed to push"}"#)
        ) == .transient(reason: "Failed to push"))
    }

    @Test(arguments: ["Invalid input", "Not a Truecaller user", "OS not supported", "App version not supported"])
    func documentedPermanentReasons(reason: String) {
        #expect(OutcomeClassifier.classify(
            status: 400, retryAfter: nil, body: Self.body(#"{"slug": "invalid-input", "message": "\#(reason)"}"#)
        ) == .rejected(reason: reason))
    }

    @Test func failedToPushIsTransientEvenAs400() {
        #expect(OutcomeClassifier.classify(
            status: 400, retryAfter: nil, body: Self.body(#"{"slug": "push-failed", "message": "Failed to push"}"#)
        ) == .transient(reason: "Failed to push"))
        #expect(OutcomeVocabulary.outcome(forFailure: "failed to PUSH to device") == .transient(reason: "failed to PUSH to device"))
    }

    @Test func statusCodes() {
        #expect(OutcomeClassifier.classify(status: 401, retryAfter: nil, body: Data()) == .unauthorized)
        #expect(OutcomeClassifier.classify(status: 429, retryAfter: nil, body: Data()) == .rateLimited(retryAfterMs: nil))
        #expect(OutcomeClassifier.classify(status: 429, retryAfter: "2", body: Data()) == .rateLimited(retryAfterMs: 2_000))
        #expect(OutcomeClassifier.classify(status: 429, retryAfter: " 0.25 ", body: Data()) == .rateLimited(retryAfterMs: 250))
        #expect(OutcomeClassifier.classify(
            status: 429, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT", body: Data()
        ) == .rateLimited(retryAfterMs: nil))
        #expect(OutcomeClassifier.classify(status: 500, retryAfter: nil, body: Data()) == .transient(reason: "HTTP 500"))
        #expect(OutcomeClassifier.classify(
            status: 503, retryAfter: nil, body: Self.body(#"{"slug": "x", "message": "busy"}"#)
        ) == .transient(reason: "HTTP 503: busy"))
        #expect(OutcomeClassifier.classify(status: 408, retryAfter: nil, body: Data()).kind == "transient")
        #expect(OutcomeClassifier.classify(status: 403, retryAfter: nil, body: Data()).kind == "transient")
        #expect(OutcomeClassifier.classify(status: 302, retryAfter: nil, body: Data()) == .transient(reason: "unexpected HTTP 302"))
        #expect(OutcomeClassifier.classify(status: 404, retryAfter: nil, body: Data()) == .rejected(reason: "HTTP 404"))
        #expect(OutcomeClassifier.classify(status: 400, retryAfter: nil, body: Self.body("not json")) == .rejected(reason: "HTTP 400"))
    }

    @Test func outcomeNamesForAuditAndMetrics() {
        #expect(PushOutcome.accepted.kind == "accepted")
        #expect(PushOutcome.rejected(reason: "x").description == "rejected: x")
        #expect(PushOutcome.rateLimited(retryAfterMs: 5).description == "rate limited, retry after 5 ms")
        #expect(PushOutcome.transient(reason: "timeout").kind == "transient")
    }
}

@Suite struct FingerprintAndModelTests {
    @Test func fingerprintIsTheFirst12HexOfSHA256() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        #expect(TokenFingerprint.of("abc") == "ba7816bf8f01")
        // SHA-256("") = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
        #expect(TokenFingerprint.of("") == "e3b0c44298fc")
        #expect(BearerToken("abc").fingerprint == "ba7816bf8f01")
    }

    static let record = CallRecord(
        caller: "919876543210", receiver: "14155550123", startsAt: 1, endsAt: 2,
        labelID: UUID(uuidString: "0B7D7A3E-1F7E-4B8E-9A0C-2F6D1C9E8A01")!, labelName: nil, callReason: "Your parcel today"
    )

    static func object(_ value: some Encodable) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] ?? [:]
    }

    @Test func v1BodyUsesTheSeedNamesAndLowercaseUUIDs() throws {
        let object = try Self.object(V1Record(Self.record))
        #expect(Set(object.keys) == ["caller", "receiver", "starts_at", "ends_at", "label_id", "call_reason"])
        #expect(object["label_id"] as? String == "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01")
        #expect(object["starts_at"] as? Int64 == 1)
        let decoded = try JSONDecoder().decode(V1Record.self, from: JSONEncoder().encode(V1Record(Self.record)))
        #expect(decoded.record == Self.record)
    }

    @Test func v2BodyUsesTheV2Names() throws {
        var record = Self.record
        record.labelName = "Acme"
        let object = try Self.object(V2Record(record))
        #expect(Set(object.keys) == [
            "caller_number", "receiver_number", "starts_at", "ends_at", "label_id", "dynamic_label_name", "dynamic_call_reason",
        ])
        let batch = try Self.object(BatchRequest(records: [record, record]))
        #expect((batch["call_records"] as? [Any])?.count == 2)
    }

    @Test func tokenRequestAndResponseShapes() throws {
        let request = try Self.object(TokenRequest(keyID: UUID(uuidString: "1C9E5F0A-7B3D-4E2F-A1C4-D5E6F7A8B9C0")!, apiKey: "k"))
        #expect(request["key_id"] as? String == "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0")
        #expect(request["api_key"] as? String == "k")
        let response = try JSONDecoder().decode(
            TokenResponse.self, from: Data(#"{"token": "secret-token", "created_at": "2025-07-10T06:59:05.72Z"}"#.utf8)
        )
        #expect(response.createdAt == "2025-07-10T06:59:05.72Z")
        #expect(!"\(response)".contains("secret-token"))
    }

    @Test func labelDecodesTheDocumentedShape() throws {
        let json = #"""
            [{"id": "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01", "name": "Acme", "logo_url": null, "category": "Retail",
              "sub_category": null, "created_by_email": "ops@acme.example", "created_at": "2025-01-01T00:00:00Z",
              "label_type": "dynamic"}]
            """#
        let labels = try JSONDecoder().decode([Label].self, from: Data(json.utf8))
        #expect(labels.count == 1)
        #expect(labels[0].isDynamic)
        #expect(labels[0].category == "Retail")
        #expect(labels[0].logoURL == nil)
    }
}
