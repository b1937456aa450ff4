import AsyncHTTPClient
import CallRecordAPI
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Planning
import Sandbox
import Testing

/// Fixed ids and instants shared by the sandbox tests.
enum Fixture {
    static let client = UUID(uuidString: "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10")!
    static let otherClient = UUID(uuidString: "7a2d4b63-1e8f-4d2c-8b66-4c3e9f8a5b21")!
    static let keyID = UUID(uuidString: "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0")!
    static let apiKey = "2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1"
    static let otherKeyID = UUID(uuidString: "3e1a7b2c-9d5f-4a4b-83e6-f7a8b9c0d1e2")!
    static let otherAPIKey = "4f2b8c3d-ae6a-4b5c-94f7-a8b9c0d1e2f3"
    static let dynamicLabel = UUID(uuidString: "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01")!
    static let staticLabel = UUID(uuidString: "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a02")!
    static let extraLabel = UUID(uuidString: "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a03")!
    static let otherClientLabel = UUID(uuidString: "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a04")!
    /// 2025-07-10T06:59:05Z.
    static let start: Int64 = 1_752_130_745_000
    static let hour: Int64 = 3_600_000

    static func configuration(
        limits: SandboxConfiguration.Limits = .init(),
        faults: SandboxConfiguration.Faults = .init()
    ) -> SandboxConfiguration {
        SandboxConfiguration(
            clients: [
                .init(
                    clientAccountID: client,
                    apiKeys: [.init(keyID: keyID, apiKey: apiKey), .init(keyID: otherKeyID, apiKey: otherAPIKey)],
                    labels: [
                        .init(id: dynamicLabel, name: "Acme Deliveries", isDynamic: true),
                        .init(id: staticLabel, name: "Acme", isDynamic: false),
                        .init(id: extraLabel, name: "Acme Returns", isDynamic: true),
                    ]
                ),
                .init(
                    clientAccountID: otherClient,
                    apiKeys: [.init(keyID: UUID(), apiKey: "other-client-key")],
                    labels: [.init(id: otherClientLabel, name: "Other Co", isDynamic: true)]
                ),
            ],
            limits: limits,
            faults: faults
        )
    }

    /// A valid record for a sandbox whose clock reads `now`.
    static func record(now: Int64 = start, labelName: String? = nil, callReason: String? = nil) -> CallRecord {
        CallRecord(
            caller: "919876543210", receiver: "14155550123", startsAt: now + hour, endsAt: now + 2 * hour,
            labelID: dynamicLabel, labelName: labelName, callReason: callReason
        )
    }
}

/// One HTTP answer, read completely.
struct Answer {
    var status: Int
    var body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
    }
}

/// A sandbox running in-process on a free loopback port, with a raw HTTP client to talk to it.
struct TestSandbox: Sendable {
    let port: Int
    let server: SandboxServer
    let http: HTTPClient
    let clock: ManualClock

    var base: String { "http://127.0.0.1:\(port)" }

    /// Starts a sandbox, runs `body`, and always stops both server and client.
    static func with(
        _ configuration: SandboxConfiguration = Fixture.configuration(),
        clock: ManualClock = ManualClock(start: Fixture.start),
        recordFile: String? = nil,
        _ body: @Sendable (TestSandbox) async throws -> Void
    ) async throws {
        let server = try SandboxServer(configuration: configuration, clock: clock, recordFile: recordFile, port: 0)
        var http1 = HTTPClient.Configuration()
        http1.httpVersion = .http1Only
        // Deadlines only guard against a hang; a loaded machine may take seconds per request.
        http1.timeout = .init(connect: .seconds(20), read: .seconds(60))
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http1)
        do {
            try await server.withRunning { port in
                try await body(TestSandbox(port: port, server: server, http: http, clock: clock))
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// Sends a request and reads the whole answer.
    func send(
        _ method: HTTPMethod, _ path: String, token: String? = nil, headers: [(String, String)] = [],
        body: String? = nil, timeout: TimeAmount = .seconds(60)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await http.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), body: String(buffer: buffer))
    }

    /// Mints a token with the fixture's first key and returns it (expects success).
    func mint(keyID: UUID = Fixture.keyID, apiKey: String = Fixture.apiKey) async throws -> String {
        let answer = try await mintAnswer(keyID: keyID, apiKey: apiKey)
        #expect(answer.status == 200, "mint answered \(answer.status): \(answer.body)")
        return try #require(answer.json["token"] as? String)
    }

    func mintAnswer(client: UUID = Fixture.client, keyID: UUID = Fixture.keyID, apiKey: String = Fixture.apiKey) async throws -> Answer {
        try await send(
            .POST, "/clients/\(client.uuidString.lowercased())/token",
            headers: [("X-Public-Access", "allow")],
            body: "{\"key_id\":\"\(keyID.uuidString.lowercased())\",\"api_key\":\"\(apiKey)\"}"
        )
    }

    /// Pushes one v1 record (JSON text) with `token`.
    func pushV1(_ body: String, token: String, client: UUID = Fixture.client, timeout: TimeAmount = .seconds(60)) async throws -> Answer {
        try await send(.POST, "/clients/\(client.uuidString.lowercased())/dynamic_call_record", token: token, body: body, timeout: timeout)
    }

    /// Pushes one v2 record (JSON text) with `token`.
    func pushV2(_ body: String, token: String) async throws -> Answer {
        try await send(.POST, "/v2/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_record", token: token, body: body)
    }

    /// Pushes a batch (JSON text) with `token`.
    func pushBatch(_ body: String, token: String) async throws -> Answer {
        try await send(.POST, "/v2/clients/\(Fixture.client.uuidString.lowercased())/dynamic_call_records", token: token, body: body)
    }

    func stats() async throws -> [String: Any] {
        let answer = try await send(.GET, "/sandbox/stats")
        #expect(answer.status == 200)
        return answer.json
    }
}

/// JSON text of records, through the client's own models.
enum Body {
    static func v1(_ record: CallRecord) -> String {
        String(decoding: try! JSONEncoder().encode(V1Record(record)), as: UTF8.self)
    }

    static func v2(_ record: CallRecord) -> String {
        String(decoding: try! JSONEncoder().encode(V2Record(record)), as: UTF8.self)
    }

    static func batch(_ records: [CallRecord]) -> String {
        String(decoding: try! JSONEncoder().encode(BatchRequest(records: records)), as: UTF8.self)
    }
}

/// A temporary file path, removed by `cleanup`.
struct TemporaryFile {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-\(UUID().uuidString).jsonl").path
    }

    func lines() throws -> [[String: Any]] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) ?? [:]
        }
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
