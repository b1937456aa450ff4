import AsyncHTTPClient
import CallRecordAPI
import Foundation
import NIOCore
import NIOHTTP1
import Planning
import Sandbox
import Synchronization
import TestSupport
import Testing

/// Batch, faults, revoke, configuration.
@Suite(.timeLimit(.minutes(3))) struct SandboxBatchTests {
    @Test func batchOf500IsAcceptedAnd501Refused() async throws {
        let file = TemporaryFile()
        defer { file.cleanup() }
        try await TestSandbox.with(recordFile: file.path) { sandbox in
            let token = try await sandbox.mint()
            let records = (0..<500).map { index in
                var record = Fixture.record()
                record.receiver = String(14_155_550_000 + index)
                return record
            }
            let accepted = try await sandbox.pushBatch(Body.batch(records), token: token)
            #expect(accepted.status == 200)
            let batchID = try #require(accepted.json["batch_id"] as? String)
            #expect(UUID(uuidString: batchID) != nil)
            #expect(try file.lines().count == 500)
            #expect(try file.lines().allSatisfy { $0["transport"] as? String == "batch" })

            let tooMany = try await sandbox.pushBatch(Body.batch(records + [Fixture.record()]), token: token)
            #expect(tooMany.status == 400)
            #expect(tooMany.json["slug"] as? String == "invalid-input")
            #expect(tooMany.json["message"] as? String == "call_records: must hold 1 to 500 records")
            let empty = try await sandbox.pushBatch("{\"call_records\":[]}", token: token)
            #expect(empty.status == 400)
            #expect(try file.lines().count == 500)

            let status = try await sandbox.send(
                .GET, "/v2/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_records?batchId=\(batchID)", token: token
            )
            #expect(status.status == 200)
            let decoded = try JSONDecoder().decode(BatchStatusResponse.self, from: Data(status.body.utf8))
            #expect(decoded.data.count == 500)
            #expect(decoded.data.allSatisfy { $0.outcome == .accepted })
            #expect(decoded.data.first?.record == records.first)
        }
    }

    @Test func invalidBatchRecordsFailWithTheirReason() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let bad = Fixture.record(labelName: "ab")
            let answer = try await sandbox.pushBatch(Body.batch([Fixture.record(), bad, Fixture.record()]), token: token)
            #expect(answer.status == 200)
            let batchID = try #require(answer.json["batch_id"] as? String)
            // The v3 path of one documentation page answers too.
            let status = try await sandbox.send(
                .GET, "/v3/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_records?batchId=\(batchID)", token: token
            )
            let decoded = try JSONDecoder().decode(BatchStatusResponse.self, from: Data(status.body.utf8))
            #expect(decoded.batchID.uuidString.lowercased() == batchID)
            #expect(decoded.clientAccountID == Fixture.client)
            #expect(decoded.data.map(\.statusInfo.status) == ["success", "failed", "success"])
            #expect(decoded.data[1].statusInfo.message == "Invalid input: dynamic_label_name: must be 3 to 40 characters")
            #expect(decoded.data[1].outcome == .rejected(reason: "Invalid input: dynamic_label_name: must be 3 to 40 characters"))

            let stats = try await sandbox.stats()
            #expect(stats["accepted"] as? Int == 2)
            #expect(stats["batch_records"] as? Int == 3)
            #expect((stats["rejected"] as? [String: Int])?["dynamic_label_name: must be 3 to 40 characters"] == 1)

            let unknown = try await sandbox.send(
                .GET, "/v2/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_records?batchId=\(UUID().uuidString)", token: token
            )
            #expect(unknown.status == 404)
            let noToken = try await sandbox.send(
                .GET, "/v2/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_records?batchId=\(batchID)"
            )
            #expect(noToken.status == 401)
        }
    }

    @Test func sixtyFirstBatchRequestInAMinuteIsRefused() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let body = Body.batch([Fixture.record()])
            for index in 1...60 {
                #expect(try await sandbox.pushBatch(body, token: token).status == 200, "batch \(index)")
                if index == 30 { sandbox.clock.advance(by: 30_000) }
            }
            let refused = try await sandbox.pushBatch(body, token: token)
            #expect(refused.status == 429)
            #expect(refused.json["slug"] as? String == "rate-limit-exceeded")
            // Batch and real-time budgets are separate.
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: token).status == 200)
            // The first 30 leave the window at start + 60 s.
            sandbox.clock.set(to: Fixture.start + 59_999)
            #expect(try await sandbox.pushBatch(body, token: token).status == 429)
            sandbox.clock.set(to: Fixture.start + 60_000)
            #expect(try await sandbox.pushBatch(body, token: token).status == 200)
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct SandboxFaultTests {
    static func faults(_ faults: SandboxConfiguration.Faults) -> SandboxConfiguration {
        Fixture.configuration(faults: faults)
    }

    @Test func errorFaultAnswers500Or503AndDoesNotApply() async throws {
        let file = TemporaryFile()
        defer { file.cleanup() }
        try await TestSandbox.with(Self.faults(.init(errorRate: 1)), recordFile: file.path) { sandbox in
            let token = try await sandbox.mint()
            var statuses: Set<Int> = []
            for _ in 0..<20 {
                let answer = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token)
                statuses.insert(answer.status)
            }
            #expect(statuses == [500, 503])
            #expect(try file.lines().isEmpty)
            let stats = try await sandbox.stats()
            #expect(stats["accepted"] as? Int == 0)
            let faults = stats["faults"] as? [String: Int] ?? [:]
            #expect((faults["http_500"] ?? 0) + (faults["http_503"] ?? 0) == 20)
        }
    }

    @Test func faultsAreDeterministicForASeed() async throws {
        func statuses(seed: UInt64) async throws -> [Int] {
            let collected = Collected()
            try await TestSandbox.with(Self.faults(.init(seed: seed, errorRate: 0.5))) { sandbox in
                let token = try await sandbox.mint()
                for _ in 0..<40 {
                    collected.append(try await sandbox.pushV1(Body.v1(Fixture.record()), token: token).status)
                }
            }
            return collected.values
        }
        let first = try await statuses(seed: 7)
        let again = try await statuses(seed: 7)
        let other = try await statuses(seed: 8)
        #expect(first == again)
        #expect(first != other)
        #expect(first.contains(200) && first.contains { $0 >= 500 })
    }

    @Test func resetClosesTheConnectionWithoutAnswerAndDoesNotApply() async throws {
        let file = TemporaryFile()
        defer { file.cleanup() }
        try await TestSandbox.with(Self.faults(.init(resetRate: 1)), recordFile: file.path) { sandbox in
            let token = try await sandbox.mint()
            await #expect(throws: HTTPClientError.remoteConnectionClosed) {
                _ = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token)
            }
            #expect(try file.lines().isEmpty)
            let stats = try await sandbox.stats()
            #expect((stats["faults"] as? [String: Int])?["reset"] == 1)
            #expect(stats["accepted"] as? Int == 0)
        }
    }

    @Test func timeoutAppliesTheRecordButNeverAnswers() async throws {
        let file = TemporaryFile()
        defer { file.cleanup() }
        try await TestSandbox.with(Self.faults(.init(timeoutRate: 1)), recordFile: file.path) { sandbox in
            let token = try await sandbox.mint()
            await #expect(throws: HTTPClientError.deadlineExceeded) {
                _ = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token, timeout: .milliseconds(300))
            }
            // The client gave up after 300 ms; a loaded machine may not have run the handler yet.
            try await waitUntil(timeout: .seconds(30), "the sandbox to apply the record it never answers") { try file.lines().count == 1 }
            let stats = try await sandbox.stats()
            #expect((stats["faults"] as? [String: Int])?["timeout"] == 1)
            #expect(stats["accepted"] as? Int == 1)
        }
    }

    @Test func heldConnectionsAreReleasedWhenTheServerStops() async throws {
        let server = try SandboxServer(
            configuration: Self.faults(.init(timeoutRate: 1)), clock: ManualClock(start: Fixture.start), port: 0
        )
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        // A client dropped without shutdown() stops the test process: shut it down on every path.
        do {
            try await heldConnectionIsReleased(server: server, http: http)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    private func heldConnectionIsReleased(server: SandboxServer, http: HTTPClient) async throws {
        let outcome = Collected()
        try await server.withRunning { port in
            let base = "http://127.0.0.1:\(port)/clients/\(Fixture.client.uuidString.lowercased())"
            var mint = HTTPClientRequest(url: base + "/token")
            mint.method = .POST
            mint.headers.add(name: "X-Public-Access", value: "allow")
            mint.body = .bytes(ByteBuffer(string: "{\"key_id\":\"\(Fixture.keyID.uuidString.lowercased())\",\"api_key\":\"\(Fixture.apiKey)\"}"))
            let minted = try await http.execute(mint, timeout: .seconds(10)).body.collect(upTo: 1 << 16)
            let token = try #require(
                (try JSONSerialization.jsonObject(with: Data(String(buffer: minted).utf8)) as? [String: Any])?["token"] as? String
            )
            var push = HTTPClientRequest(url: base + "/dynamic_call_record")
            push.method = .POST
            push.headers.add(name: "Authorization", value: "Bearer \(token)")
            push.body = .bytes(ByteBuffer(string: Body.v1(Fixture.record())))
            let pending = Task {
                do {
                    _ = try await http.execute(push, timeout: .seconds(60))
                    outcome.append(1)
                } catch {
                    outcome.append(0)
                }
            }
            // Wait until the sandbox holds the push, then stop the server.
            try await waitUntil(timeout: .seconds(30), "the sandbox to hold the push") { server.stats().accepted == 1 }
            _ = pending
        }
        // withRunning returned: the held connection was closed without an answer.
        try await waitUntil(timeout: .seconds(30), "the held request to end") { !outcome.values.isEmpty }
        #expect(outcome.values == [0])
    }

    @Test func stormAnswers429ForItsDuration() async throws {
        try await TestSandbox.with(Self.faults(.init(stormEverySeconds: 10, stormLastingSeconds: 5))) { sandbox in
            let token = try await sandbox.mint()
            let body = Body.v1(Fixture.record(now: Fixture.start + 20_000))
            #expect(try await sandbox.pushV1(body, token: token).status == 200)
            sandbox.clock.set(to: Fixture.start + 10_000)
            let storm = try await sandbox.pushV1(body, token: token)
            #expect(storm.status == 429)
            #expect(storm.json["slug"] as? String == "rate-limit-exceeded")
            sandbox.clock.set(to: Fixture.start + 14_999)
            #expect(try await sandbox.pushV1(body, token: token).status == 429)
            sandbox.clock.set(to: Fixture.start + 15_000)
            #expect(try await sandbox.pushV1(body, token: token).status == 200)
            sandbox.clock.set(to: Fixture.start + 20_000)
            #expect(try await sandbox.pushV1(body, token: token).status == 429)
            let stats = try await sandbox.stats()
            #expect(stats["storm_refusals"] as? Int == 3)
            #expect(stats["rate_limited"] as? Int == 3)
        }
    }

    @Test func latencyIsAddedOnTheSandboxClock() async throws {
        let clock = ManualClock(start: Fixture.start)
        try await TestSandbox.with(Self.faults(.init(latencyP50Ms: 1_000, latencyP99Ms: 1_000)), clock: clock) { sandbox in
            let token = try await sandbox.mint()
            let answered = Collected()
            let push = Task {
                let answer = try await sandbox.pushV1(Body.v1(Fixture.record()), token: token)
                answered.append(answer.status)
            }
            try await clock.waitForSleepers(1, "the sandbox to hold the push for its latency")
            #expect(clock.sleeperCount == 1)
            #expect(answered.values.isEmpty)
            clock.advance(by: 2_001)
            try await push.value
            #expect(answered.values == [200])
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct SandboxControlTests {
    @Test func revokeAllThenEveryTokenAnswers401() async throws {
        try await TestSandbox.with { sandbox in
            let first = try await sandbox.mint()
            let second = try await sandbox.mint()
            let revoked = try await sandbox.send(.POST, "/sandbox/revoke", body: "{}")
            #expect(revoked.status == 200)
            #expect(revoked.json["revoked"] as? Int == 2)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: first).status == 401)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: second).status == 401)
            // New tokens work.
            let fresh = try await sandbox.mint()
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: fresh).status == 200)
        }
    }

    @Test func aStormStartedThroughTheControlEndpointLastsExactlyItsDuration() async throws {
        try await TestSandbox.with { sandbox in
            let token = try await sandbox.mint()
            let body = Body.v1(Fixture.record(now: Fixture.start + 10_000))
            #expect(try await sandbox.pushV1(body, token: token).status == 200)
            let started = try await sandbox.send(.POST, "/sandbox/storm", body: "{\"seconds\": 2.5}")
            #expect(started.status == 200)
            #expect(started.json["storm_ms"] as? Int == 2_500)
            #expect(try await sandbox.pushV1(body, token: token).status == 429)
            sandbox.clock.advance(by: 2_499)
            #expect(try await sandbox.pushV1(body, token: token).status == 429)
            sandbox.clock.advance(by: 1)
            #expect(try await sandbox.pushV1(body, token: token).status == 200)
            #expect(try await sandbox.stats()["storm_refusals"] as? Int == 2)
            for bad in ["{}", "{\"seconds\": 0}", "{\"seconds\": -1}", "{\"seconds\": 3601}", "{\"seconds\": \"5\"}", "not json"] {
                let refused = try await sandbox.send(.POST, "/sandbox/storm", body: bad)
                #expect(refused.status == 400, "\(bad)")
                #expect((refused.json["message"] as? String ?? "").contains("seconds"), "\(bad): \(refused.body)")
            }
        }
    }

    @Test func revokeOneTokenByFingerprint() async throws {
        try await TestSandbox.with { sandbox in
            let first = try await sandbox.mint()
            let second = try await sandbox.mint()
            let revoked = try await sandbox.send(.POST, "/sandbox/revoke", body: "{\"token\":\"\(TokenFingerprint.of(first))\"}")
            #expect(revoked.json["revoked"] as? Int == 1)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: first).status == 401)
            #expect(try await sandbox.pushV1(Body.v1(Fixture.record()), token: second).status == 200)
            #expect(try await sandbox.stats()["revoked"] as? Int == 1)
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct SandboxConfigurationTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func shippedDemoConfigurationParses() throws {
        let path = Self.repositoryRoot.appendingPathComponent("config/sandbox.yaml").path
        let configuration = try SandboxConfiguration.load(path: path)
        let client = try #require(configuration.clients.first)
        #expect(client.clientAccountID == UUID(uuidString: "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"))
        #expect(client.apiKeys.count == 1)
        #expect(client.labels.contains { $0.name == "Acme Deliveries" && $0.isDynamic })
        #expect(client.labels.contains { !$0.isDynamic })
        #expect(configuration.limits == SandboxConfiguration.Limits())
    }

    @Test func fullConfigurationParses() throws {
        let yaml = """
            clients:
              - client_account_id: 6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10
                api_keys: [{key_id: 1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0, api_key: 2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1}]
                labels: [{id: 0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01, name: Acme, label_type: static}]
            limits:
              realtime_requests_per_second_per_token: 50
              batch_requests_per_minute_per_token: 6
              batch_max_records: 100
              tokens_per_window: 3
              token_window_seconds: 60
              token_ttl_seconds: 120
              enforce: false
            faults:
              seed: 42
              latency_ms: {p50: 5, p99: 50}
              error_rate: 0.1
              reset_rate: 0.05
              timeout_rate: 0.01
              rate_limit_storm: {every_seconds: 300, lasting_seconds: 10}
            """
        let configuration = try SandboxConfiguration.parse(yaml: yaml)
        #expect(configuration.limits == .init(
            realtimeRequestsPerSecondPerToken: 50, batchRequestsPerMinutePerToken: 6, batchMaxRecords: 100,
            tokensPerWindow: 3, tokenWindowSeconds: 60, tokenTTLSeconds: 120, enforce: false
        ))
        #expect(configuration.faults == .init(
            seed: 42, latencyP50Ms: 5, latencyP99Ms: 50, errorRate: 0.1, resetRate: 0.05, timeoutRate: 0.01,
            stormEverySeconds: 300, stormLastingSeconds: 10
        ))
        #expect(configuration.clients[0].labels[0].isDynamic == false)
    }

    @Test(arguments: [
        ("clients: []\nlimit: {}", "sandbox config: limit: unknown key"),
        ("clients: []\nlimits: {enforce: maybe}", "sandbox config: limits.enforce: must be true or false"),
        ("clients: []\nlimits: {tokens_per_window: 0}", "sandbox config: limits.tokens_per_window: must be greater than 0"),
        ("clients: []\nfaults: {error_rate: 1.5}", "sandbox config: faults.error_rate: must be between 0 and 1"),
        ("clients: [{client_account_id: nope}]", "sandbox config: clients[0].client_account_id: must be a UUID"),
        ("clients: [{client_account_id: 6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10, labels: [{id: 0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01, name: A, label_type: odd}]}]",
         "sandbox config: clients[0].labels[0].label_type: must be dynamic or static, not odd"),
        ("limits: {}", "sandbox config: clients: is required"),
    ])
    func badConfigurationNamesTheKey(yaml: String, message: String) {
        #expect(throws: SandboxError(code: .configuration, message: message)) {
            _ = try SandboxConfiguration.parse(yaml: yaml)
        }
    }
}

/// A thread-safe list for collecting values from concurrent tasks in tests.
final class Collected: Sendable {
    private let storage = Mutex<[Int]>([])

    func append(_ value: Int) {
        storage.withLock { $0.append(value) }
    }

    var values: [Int] {
        storage.withLock { $0 }
    }
}

@Suite(.timeLimit(.minutes(3))) struct SandboxSecretTests {
    @Test func configurationNeverPrintsAnAPIKey() {
        let configuration = Fixture.configuration()
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), dumped] {
            #expect(!text.contains(Fixture.apiKey))
            #expect(!text.contains(Fixture.otherAPIKey))
        }
    }
}
