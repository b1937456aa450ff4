import CallRecordAPI
import Foundation
import NIOHTTP1
import Planning
import Sandbox
import Testing

/// Minting, real-time pushes, validation over HTTP, token lifetime, limits, stats, record file.
@Suite(.timeLimit(.minutes(3))) struct SandboxCoreTests {
    @Test func mintAnswersTokenAndCreatedAt() async throws {
        try await TestSandbox.with { sandbox in
            let answer = try await sandbox.mintAnswer()
            #expect(answer.status == 200)
            let token = try #require(answer.json["token"] as? String)
            #expect(!token.isEmpty)
            #expect(answer.json["created_at"] as? String == "2025-07-10T06:59:05.000Z")
        }
    }

    @Test func mintFailures() async throws {
        try await TestSandbox.with { sandbox in
            let wrongKey = try await sandbox.mintAnswer(apiKey: "not-the-key")
            #expect(wrongKey.status == 401)
            #expect(wrongKey.json["slug"] as? String == "authorization-error")
            #expect(!wrongKey.body.contains("not-the-key"))

            let unknownClient = try await sandbox.mintAnswer(client: UUID())
            #expect(unknownClient.status == 404)

            let missing = try await sandbox.send(
                .POST, "/clients/\(Fixture.client.uuidString.lowercased())/token",
                headers: [("X-Public-Access", "allow")], body: "{\"key_id\":\"\(Fixture.keyID.uuidString.lowercased())\"}"
            )
            #expect(missing.status == 400)
            #expect(missing.json["slug"] as? String == "invalid-input")
            #expect(missing.json["message"] as? String == "api_key is required")

            let noHeader = try await sandbox.send(
                .POST, "/clients/\(Fixture.client.uuidString.lowercased())/token",
                body: "{\"key_id\":\"\(Fixture.keyID.uuidString.lowercased())\",\"api_key\":\"\(Fixture.apiKey)\"}"
            )
            #expect(noHeader.status == 400)
        }
    }

    @Test func v1AndV2PushesAreAcceptedWithTheDocumentedBodies() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let v1 = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token)
            #expect(v1.status == 200)
            #expect(v1.json["status"] as? String == "success")
            #expect((v1.json["message"] as? String)?.hasPrefix("Records Uploaded Successfully. BatchID: ") == true)

            let v2 = try await sandbox.pushV2(Body.v2(Fixture.record(labelName: "Acme")), token: token)
            #expect(v2.status == 200)
            let info = v2.json["status_info"] as? [String: Any]
            #expect(info?["status"] as? String == "success")
            #expect(info?["message"] as? String == "Record processed successfully")
        }
    }

    @Test func unknownClientIs404AndMissingTokenIs401() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let unknown = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token, client: UUID())
            #expect(unknown.status == 404)
            let missing = try await sandbox.send(
                .POST, "/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_record", body: Body.v1(Fixture.record())
            )
            #expect(missing.status == 401)
            #expect(missing.json["slug"] as? String == "authorization-error")
            let garbage = try await sandbox.pushV1(Body.v1(Fixture.record()), token: "not-a-token")
            #expect(garbage.status == 401)
            // A token of this client used for another client's path is not valid there.
            let foreign = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token, client: Fixture.otherClient)
            #expect(foreign.status == 401)
        }
    }

    /// Every rule answers 400 `{"slug":"invalid-input","message":"<field>: <rule>"}`, at its edges.
    @Test func everyRuleAtItsEdgesOverHTTP() async throws {
        let now = Fixture.start
        let hour = Fixture.hour
        func rec(
            caller: String = "919876543210", startsAt: Int64 = now + 1, endsAt: Int64 = now + hour,
            label: UUID = Fixture.dynamicLabel, labelName: String? = nil, callReason: String? = nil
        ) -> CallRecord {
            CallRecord(
                caller: caller, receiver: "14155550123", startsAt: startsAt, endsAt: endsAt,
                labelID: label, labelName: labelName, callReason: callReason
            )
        }
        let a = { (n: Int) in String(repeating: "a", count: n) }
        let cases: [(FieldNaming, CallRecord, String?)] = [
            (.v1, rec(startsAt: now, endsAt: now + 24 * hour), nil),
            (.v1, rec(startsAt: now, endsAt: now + 24 * hour + 1), "ends_at: must be at most 24 hours after starts_at"),
            (.v1, rec(startsAt: now - hour, endsAt: now), nil),
            (.v1, rec(startsAt: now - hour, endsAt: now - 1), "ends_at: must not be before now"),
            (.v1, rec(startsAt: now + hour, endsAt: now + hour), "starts_at: must be before ends_at"),
            (.v1, rec(caller: "+919876543210"), "caller: must not contain \"+\": write the country code and number as digits only"),
            (.v2, rec(caller: "+919876543210"), "caller_number: must not contain \"+\": write the country code and number as digits only"),
            (.v1, rec(caller: "91-98765-43210"), "caller: must be a phone number with country code, digits only"),
            (.v1, rec(label: UUID()), "label_id: must be a known label"),
            (.v1, rec(label: Fixture.staticLabel), "label_id: must be a dynamic label"),
            (.v1, rec(label: Fixture.otherClientLabel), "label_id: must be a label of this client"),
            (.v1, rec(labelName: a(40)), nil),
            (.v1, rec(labelName: a(41)), "label_name: must be at most 40 characters"),
            (.v2, rec(labelName: a(2)), "dynamic_label_name: must be 3 to 40 characters"),
            (.v2, rec(labelName: a(3)), nil),
            (.v2, rec(labelName: a(41)), "dynamic_label_name: must be 3 to 40 characters"),
            (.v1, rec(callReason: a(9)), "call_reason: must be 10 to 100 characters"),
            (.v1, rec(callReason: a(10)), nil),
            (.v1, rec(callReason: a(100)), nil),
            (.v1, rec(callReason: a(101)), "call_reason: must be 10 to 100 characters"),
            (.v2, rec(callReason: a(9)), "dynamic_call_reason: must be 10 to 100 characters"),
            (.v1, rec(callReason: " Your parcel"), "call_reason: must not start or end with a space"),
            (.v1, rec(callReason: "-Your parcel"), "call_reason: must not start or end with \".\", \",\", \"-\""),
            (.v1, rec(callReason: "Your parcel."), "call_reason: must not start or end with \".\", \",\", \"-\""),
        ] + "!@#$%^&*()_+/".map { character in
            (FieldNaming.v1, rec(callReason: "Parcel \(character) today"), "call_reason: must not contain any of ! @ # $ % ^ & * ( ) _ + /")
        }
        var config = Fixture.configuration()
        config.limits.enforce = false
        try await TestSandbox.with(config) { sandbox in
            let token = try await sandbox.mint()
            for (naming, record, expected) in cases {
                let answer = naming == .v1
                    ? try await sandbox.pushV1(Body.v1(record), token: token)
                    : try await sandbox.pushV2(Body.v2(record), token: token)
                if let expected {
                    #expect(answer.status == 400, "\(expected)")
                    #expect(answer.json["slug"] as? String == "invalid-input")
                    #expect(answer.json["message"] as? String == expected)
                } else {
                    #expect(answer.status == 200, "\(record) answered \(answer.body)")
                }
            }
            let stats = try await sandbox.stats()
            let rejected = stats["rejected"] as? [String: Int] ?? [:]
            #expect(rejected["call_reason: must not contain any of ! @ # $ % ^ & * ( ) _ + /"] == 13)
            #expect(stats["accepted"] as? Int == cases.filter { $0.2 == nil }.count)
        }
    }

    @Test func malformedBodiesNameTheField() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let label = Fixture.dynamicLabel.uuidString.lowercased()
            let missing = try await sandbox.pushV1("{\"receiver\":\"14155550123\",\"starts_at\":1,\"ends_at\":2,\"label_id\":\"\(label)\"}", token: token)
            #expect(missing.status == 400)
            #expect(missing.json["message"] as? String == "caller: is required")
            let wrongType = try await sandbox.pushV1(
                "{\"caller\":\"919876543210\",\"receiver\":\"14155550123\",\"starts_at\":\"soon\",\"ends_at\":2,\"label_id\":\"\(label)\"}",
                token: token
            )
            #expect(wrongType.json["message"] as? String == "starts_at: must be an integer (epoch ms)")
            let badUUID = try await sandbox.pushV1(
                "{\"caller\":\"919876543210\",\"receiver\":\"14155550123\",\"starts_at\":1,\"ends_at\":2,\"label_id\":\"nope\"}",
                token: token
            )
            #expect(badUUID.json["message"] as? String == "label_id: must be a UUID")
            let notJSON = try await sandbox.pushV1("caller=1", token: token)
            #expect(notJSON.status == 400)
            #expect(notJSON.json["message"] as? String == "body: must be valid JSON")
        }
    }

    @Test func tokenExpiresAfterItsTTL() async throws {
        var config = Fixture.configuration()
        config.limits.tokenTTLSeconds = 60
        try await TestSandbox.with(config) { sandbox in
            let token = try await sandbox.mint()
            sandbox.clock.advance(by: 59_999)
            let now = sandbox.clock.now()
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record(now: now)), token: token).status == 200)
            sandbox.clock.advance(by: 1)
            let expired = try await sandbox.pushV1(Body.v1(Fixture.record(now: now)), token: token)
            #expect(expired.status == 401)
            #expect(expired.json["slug"] as? String == "authorization-error")
        }
    }

    /// 100 accepted in `(t - 1 s, t]`: the 101st at the same instant is refused, and again 999 ms
    /// later; 1,000 ms later the first ones have left the window.
    @Test func hundredthRequestAcceptedHundredAndFirstRefused() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let body = Body.v1(Fixture.record())
            for index in 1...100 {
                let answer = try await sandbox.pushV1(body, token: token)
                #expect(answer.status == 200, "request \(index)")
            }
            let refused = try await sandbox.pushV1(body, token: token)
            #expect(refused.status == 429)
            #expect(refused.json["slug"] as? String == "rate-limit-exceeded")
            sandbox.clock.advance(by: 999)
            #expect(try await sandbox.pushV1(body, token: token).status == 429)
            sandbox.clock.advance(by: 1)
            #expect(try await sandbox.pushV1(body, token: token).status == 200)

            // A second token has its own budget.
            let second = try await sandbox.mint()
            #expect(try await sandbox.pushV1(body, token: second).status == 200)

            let stats = try await sandbox.stats()
            #expect(stats["rate_limited"] as? Int == 2)
            let tokens = stats["tokens"] as? [String: [String: Int]] ?? [:]
            let first = tokens[TokenFingerprint.of(token)]
            #expect(first?["accepted"] == 101)
            #expect(first?["peak_1s"] == 100)
            #expect(tokens[TokenFingerprint.of(second)]?["accepted"] == 1)
        }
    }

    @Test func limitCountsRequestsRejectedForTheirContent() async throws {
        var config = Fixture.configuration()
        config.limits.realtimeRequestsPerSecondPerToken = 3
        try await TestSandbox.with(config) { sandbox in
            let token = try await sandbox.mint()
            let bad = Body.v1(Fixture.record(callReason: "short"))
            #expect(try await sandbox.pushV1(bad, token: token).status == 400)
            #expect(try await sandbox.pushV1(bad, token: token).status == 400)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: token).status == 200)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: token).status == 429)
        }
    }

    @Test func eleventhMintInTheWindowIsRefused() async throws {
        try await TestSandbox.with { sandbox in
            // Failed mints do not count.
            for _ in 0..<3 {
                #expect(try await sandbox.mintAnswer(apiKey: "wrong").status == 401)
            }
            for index in 1...10 {
                #expect(try await sandbox.mintAnswer().status == 200, "mint \(index)")
                sandbox.clock.advance(by: 60_000)
            }
            // Minted at start, +1 min, …, +9 min; now start + 10 min.
            let refused = try await sandbox.mintAnswer()
            #expect(refused.status == 429)
            #expect(refused.json["slug"] as? String == "rate-limit-exceeded")
            // The default scope is the account: the other key shares the budget.
            #expect(try await sandbox.mintAnswer(keyID: Fixture.otherKeyID, apiKey: Fixture.otherAPIKey).status == 429)
            // The first mint leaves the 30-minute window at start + 30 min exactly.
            sandbox.clock.set(to: Fixture.start + 1_800_000 - 1)
            #expect(try await sandbox.mintAnswer().status == 429)
            sandbox.clock.set(to: Fixture.start + 1_800_000)
            #expect(try await sandbox.mintAnswer().status == 200)
            #expect(try await sandbox.mintAnswer().status == 429)

            let stats = try await sandbox.stats()
            #expect(stats["tokens_minted"] as? Int == 11)
            #expect(stats["mints_refused"] as? Int == 4)
        }
    }

    @Test func mintLimitPerKeyWhenConfigured() async throws {
        var config = Fixture.configuration()
        config.limits.tokensPerWindow = 2
        config.limits.mintLimitScope = .key
        try await TestSandbox.with(config) { sandbox in
            let statuses = [
                try await sandbox.mintAnswer().status,
                try await sandbox.mintAnswer().status,
                try await sandbox.mintAnswer().status,
                try await sandbox.mintAnswer(keyID: Fixture.otherKeyID, apiKey: Fixture.otherAPIKey).status,
            ]
            #expect(statuses == [200, 200, 429, 200])
        }
    }

    @Test func enforceFalseLiftsEveryLimitButKeepsCounting() async throws {
        var config = Fixture.configuration()
        config.limits.enforce = false
        config.limits.tokensPerWindow = 1
        try await TestSandbox.with(config) { sandbox in
            let token = try await sandbox.mint()
            _ = try await sandbox.mint()
            let body = Body.v1(Fixture.record())
            for _ in 0..<150 {
                #expect(try await sandbox.pushV1(body, token: token).status == 200)
            }
            let tokens = try await sandbox.stats()["tokens"] as? [String: [String: Int]] ?? [:]
            #expect(tokens[TokenFingerprint.of(token)]?["peak_1s"] == 150)
        }
    }

    @Test func peakIsTheBusiestOneSecondWindow() async throws {
        var config = Fixture.configuration()
        config.limits.enforce = false
        try await TestSandbox.with(config) { sandbox in
            let token = try await sandbox.mint()
            let body = Body.v1(Fixture.record())
            // 5 at t, 5 at t+999 (10 in one window), 5 at t+1999 (the first 5 left: 10 again).
            for step in 0..<3 {
                for _ in 0..<5 { #expect(try await sandbox.pushV1(body, token: token).status == 200) }
                sandbox.clock.advance(by: step == 0 ? 999 : 1_000)
            }
            let tokens = try await sandbox.stats()["tokens"] as? [String: [String: Int]] ?? [:]
            #expect(tokens[TokenFingerprint.of(token)]?["peak_1s"] == 10)
            #expect(tokens[TokenFingerprint.of(token)]?["accepted"] == 15)
        }
    }

    @Test func recordFileHoldsOneLinePerAcceptedRecordBeforeTheAnswer() async throws {
        let file = TemporaryFile()
        defer { file.cleanup() }
        try await TestSandbox.with(recordFile: file.path) { sandbox in
            let token = try await sandbox.mint()
            let v1 = Fixture.record(labelName: "Acme \"Fast\"", callReason: "Your parcel arrives today")
            #expect(try await sandbox.pushV1(Body.v1(v1), token: token).status == 200)
            // Written before the 200 was sent: visible now.
            #expect(try file.lines().count == 1)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record(callReason: "short")), token: token).status == 400)
            #expect(try await sandbox.pushV2(Body.v2(Fixture.record()), token: token).status == 200)

            let lines = try file.lines()
            #expect(lines.count == 2)
            let first = lines[0]
            #expect(first["received_at"] as? Int64 == Fixture.start)
            #expect(first["client_account_id"] as? String == Fixture.client.uuidString.lowercased())
            #expect(first["transport"] as? String == "v1")
            #expect(first["token"] as? String == TokenFingerprint.of(token))
            #expect(first["caller"] as? String == v1.caller)
            #expect(first["receiver"] as? String == v1.receiver)
            #expect(first["label_id"] as? String == Fixture.dynamicLabel.uuidString.lowercased())
            #expect(first["label_name"] as? String == "Acme \"Fast\"")
            #expect(first["call_reason"] as? String == "Your parcel arrives today")
            #expect(first["starts_at"] as? Int64 == v1.startsAt)
            #expect(first["ends_at"] as? Int64 == v1.endsAt)
            let second = lines[1]
            #expect(second["transport"] as? String == "v2")
            #expect(second["caller"] as? String == v1.caller)
            #expect(second["label_name"] is NSNull)
            #expect(second["call_reason"] is NSNull)
            // The token itself never appears.
            let text = try String(contentsOfFile: file.path, encoding: .utf8)
            #expect(!text.contains(token))
        }
    }

    @Test func statsCountEveryKindOfAnswer() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            _ = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token)
            _ = try await sandbox.pushV1(Body.v1(Fixture.record(labelName: String(repeating: "x", count: 41))), token: token)
            _ = try await sandbox.pushV1(Body.v1(Fixture.record()), token: "nope")
            _ = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token, client: UUID())
            let stats = try await sandbox.stats()
            #expect(stats["requests"] as? Int == 5)
            #expect(stats["accepted"] as? Int == 1)
            #expect(stats["unauthorized"] as? Int == 1)
            #expect(stats["not_found"] as? Int == 1)
            #expect(stats["tokens_minted"] as? Int == 1)
            #expect((stats["rejected"] as? [String: Int])?["label_name: must be at most 40 characters"] == 1)
            #expect(stats["rate_limited"] as? Int == 0)
            #expect(sandbox.server.stats().accepted == 1)
        }
    }

    @Test func labelsArePagedAndNeedAToken() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let path = "/clients/\(Fixture.client.uuidString.lowercased())/labels"
            #expect(try await sandbox.send(.GET, path + "?page=1&limit=2").status == 401)
            let first = try await sandbox.send(.GET, path + "?page=1&limit=2", token: token)
            #expect(first.status == 200)
            let page1 = try JSONSerialization.jsonObject(with: Data(first.body.utf8)) as? [[String: Any]] ?? []
            #expect(page1.map { $0["name"] as? String } == ["Acme Deliveries", "Acme"])
            #expect(page1.map { $0["label_type"] as? String } == ["dynamic", "static"])
            let second = try await sandbox.send(.GET, path + "?page=2&limit=2", token: token)
            let page2 = try JSONSerialization.jsonObject(with: Data(second.body.utf8)) as? [[String: Any]] ?? []
            #expect(page2.map { $0["id"] as? String } == [Fixture.extraLabel.uuidString.lowercased()])
        }
    }
}
