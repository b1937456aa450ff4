import CallRecordAPI
import Foundation
import Planning
import Sandbox
import TestSupport
import Synchronization
import Testing

/// The client pointed at an in-process sandbox: each kind of answer is classified correctly.
@Suite(.timeLimit(.minutes(3))) struct APIClientTests {
    static let client = UUID(uuidString: "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10")!
    static let keyID = UUID(uuidString: "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0")!
    static let apiKey = "2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1"
    static let label = UUID(uuidString: "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01")!
    static let start: Int64 = 1_752_130_745_000

    static func configuration(
        limits: SandboxConfiguration.Limits = .init(), faults: SandboxConfiguration.Faults = .init(), labels: Int = 1
    ) -> SandboxConfiguration {
        var all: [SandboxConfiguration.Label] = [.init(id: label, name: "Acme Deliveries", isDynamic: true)]
        for index in 1..<labels {
            all.append(.init(id: UUID(), name: "Label \(index)", isDynamic: index % 2 == 0))
        }
        return SandboxConfiguration(
            clients: [.init(clientAccountID: client, apiKeys: [.init(keyID: keyID, apiKey: apiKey)], labels: all)],
            limits: limits, faults: faults
        )
    }

    static let record = CallRecord(
        caller: "919876543210", receiver: "14155550123", startsAt: start + 60_000, endsAt: start + 3_600_000,
        labelID: label, labelName: "Acme", callReason: "Your parcel arrives today"
    )

    /// Runs `body` with a sandbox on a free port and a client pointed at it; stops both.
    static func with(
        _ configuration: SandboxConfiguration = configuration(),
        clock: ManualClock = ManualClock(start: start),
        requestTimeoutMs: Int64 = 10_000,
        labelsPageSize: Int = 1_000,
        _ body: @Sendable (APIClient, SandboxServer) async throws -> Void
    ) async throws {
        let server = try SandboxServer(configuration: configuration, clock: clock, port: 0)
        try await server.withRunning { port in
            let api = APIClient(options: .init(
                baseURL: "http://127.0.0.1:\(port)/", requestTimeoutMs: requestTimeoutMs, labelsPageSize: labelsPageSize
            ))
            do {
                try await body(api, server)
            } catch {
                try? await api.shutdown()
                throw error
            }
            try await api.shutdown()
        }
    }

    @Test func aBatchWhoseStatusNeverComesIsGivenBackUndecidedAfterBoundedPollsNotAtItsEnd() async throws {
        let clock = ManualClock(start: Self.start)
        try await Self.with(clock: clock) { api, _ in
            let minted = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey)
            let records = (0..<3).map { n in
                CallRecord(caller: "919876543210", receiver: "1415555012\(n)", startsAt: Self.start + 60_000, endsAt: Self.start + 4 * 3_600_000,
                           labelID: Self.label)
            }
            // An unknown batch: every status poll fails (404). Each poll passes the gate (the
            // token's pacer), and its end is reported as answered.
            let passes = Mutex((entered: 0, answered: 0, unanswered: 0))
            let gate = RequestGate(enter: { passes.withLock { $0.entered += 1; return UInt64($0.entered) } },
                                   leave: { _, answered in passes.withLock { if answered { $0.answered += 1 } else { $0.unanswered += 1 } } })
            let outcomes = try await withSimulatedTime(on: clock, busy: { false }, "the polls of a batch nobody knows") {
                await api.batchOutcomes(batchID: UUID(), records: records, token: minted.token, clientAccountID: Self.client, clock: clock, gate: gate)
            }
            #expect(passes.withLock { $0 } == (entered: 30, answered: 30, unanswered: 0))
            #expect(outcomes.count == 3)
            #expect(outcomes.allSatisfy { if case .transient(let reason) = $0 { reason.hasSuffix("undecided after 30 status polls") } else { false } })
            // 30 polls with back-off to 5 s take about 2 minutes, not the 4 hours until the records' end.
            #expect(clock.now() - Self.start < 180_000)
            // A token the pool may no longer use is not polled with at all.
            let unpolled = await api.batchOutcomes(batchID: UUID(), records: records, token: minted.token, clientAccountID: Self.client,
                                                   clock: clock, gate: RequestGate(enter: { nil }, leave: { _, _ in }))
            #expect(unpolled.allSatisfy { if case .transient(let reason) = $0 { reason.hasSuffix("after 0 status polls") } else { false } })
        }
    }

    @Test func mintsATokenWhoseDescriptionHidesTheSecret() async throws {
        try await Self.with { api, _ in
            let minted = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey)
            let secret = minted.token.secret
            #expect(!secret.isEmpty)
            #expect(minted.token.fingerprint == TokenFingerprint.of(secret))
            for text in ["\(minted)", "\(minted.token)", String(reflecting: minted.token), String(reflecting: minted)] {
                #expect(!text.contains(secret))
            }
            var dumped = ""
            dump(minted, to: &dumped)
            #expect(!dumped.contains(secret))
            #expect("\(minted.token)" == "token \(minted.token.fingerprint)")
        }
    }

    @Test func mintErrorsAreTypedAndNeverHoldTheKey() async throws {
        var config = Self.configuration()
        config.limits.tokensPerWindow = 1
        try await Self.with(config) { api, _ in
            let wrongKey = "9f9f9f9f-wrong-key-9f9f9f9f"
            do {
                _ = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: wrongKey)
                Issue.record("minting with a wrong key succeeded")
            } catch let error as APIError {
                #expect(error.code == .unauthorized)
                #expect(error.httpStatus == 401)
                #expect(!error.description.contains(wrongKey))
                #expect(!String(reflecting: error).contains(wrongKey))
            }
            _ = try await api.mintToken(clientAccountID: Self.client, key: APIKey(keyID: Self.keyID, apiKey: Self.apiKey))
            await #expect(throws: APIError.self) {
                _ = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey)
            }
            do {
                _ = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey)
            } catch let error as APIError {
                #expect(error.code == .rateLimited)
                #expect(!error.description.contains(Self.apiKey))
            }
            do {
                _ = try await api.mintToken(clientAccountID: UUID(), keyID: Self.keyID, apiKey: Self.apiKey)
            } catch let error as APIError {
                #expect(error.code == .notFound)
            }
        }
        #expect(!"\(APIKey(keyID: Self.keyID, apiKey: Self.apiKey))".contains(Self.apiKey))
        #expect(!String(reflecting: APIKey(keyID: Self.keyID, apiKey: Self.apiKey)).contains(Self.apiKey))
        #expect(!"\(TokenRequest(keyID: Self.keyID, apiKey: Self.apiKey))".contains(Self.apiKey))
    }

    @Test func acceptedAndRejectedPushes() async throws {
        try await Self.with { api, _ in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            for transport in [FieldNaming.v1, .v2] {
                let accepted = await api.push(Self.record, transport: transport, token: token, clientAccountID: Self.client)
                #expect(accepted == PushResult(outcome: .accepted, httpStatus: 200))
            }
            var bad = Self.record
            bad.callReason = "Too short"
            let v1 = await api.push(bad, transport: .v1, token: token, clientAccountID: Self.client)
            #expect(v1 == PushResult(outcome: .rejected(reason: "call_reason: must be 10 to 100 characters"), httpStatus: 400))
            let v2 = await api.push(bad, transport: .v2, token: token, clientAccountID: Self.client)
            #expect(v2.outcome == .rejected(reason: "dynamic_call_reason: must be 10 to 100 characters"))
            bad = Self.record
            bad.caller = "+919876543210"
            let plus = await api.push(bad, transport: .v1, token: token, clientAccountID: Self.client)
            #expect(plus.outcome.kind == "rejected")
        }
    }

    @Test func rateLimitedThenAcceptedAgainAfterTheWindow() async throws {
        let clock = ManualClock(start: Self.start)
        try await Self.with(Self.configuration(limits: .init(realtimeRequestsPerSecondPerToken: 2)), clock: clock) { api, _ in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            var outcomes: [PushOutcome] = []
            for _ in 0..<3 {
                outcomes.append(await api.push(Self.record, transport: .v1, token: token, clientAccountID: Self.client).outcome)
            }
            #expect(outcomes == [.accepted, .accepted, .rateLimited(retryAfterMs: nil)])
            clock.advance(by: 1_000)
            #expect(await api.push(Self.record, transport: .v1, token: token, clientAccountID: Self.client).outcome == .accepted)
        }
    }

    @Test func unauthorizedWhenExpiredOrRevoked() async throws {
        let clock = ManualClock(start: Self.start)
        try await Self.with(Self.configuration(limits: .init(tokenTTLSeconds: 60)), clock: clock) { api, server in
            let first = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            let second = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            server.revoke(fingerprint: first.fingerprint)
            let revoked = await api.push(Self.record, transport: .v1, token: first, clientAccountID: Self.client)
            #expect(revoked == PushResult(outcome: .unauthorized, httpStatus: 401))
            #expect(await api.push(Self.record, transport: .v2, token: second, clientAccountID: Self.client).outcome == .accepted)
            clock.advance(by: 60_000)
            #expect(await api.push(Self.record, transport: .v2, token: second, clientAccountID: Self.client).outcome == .unauthorized)
            let batch = await api.pushBatch([Self.record], token: second, clientAccountID: Self.client)
            #expect(batch.outcome == .unauthorized)
        }
    }

    @Test func serverErrorsAreTransient() async throws {
        try await Self.with(Self.configuration(faults: .init(errorRate: 1))) { api, _ in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            let result = await api.push(Self.record, transport: .v1, token: token, clientAccountID: Self.client)
            guard case .transient(let reason) = result.outcome else {
                Issue.record("expected transient, got \(result.outcome)")
                return
            }
            #expect([500, 503].contains(result.httpStatus))
            #expect(reason.hasPrefix("HTTP 50"))
        }
    }

    @Test func resetIsTransientWithoutStatus() async throws {
        try await Self.with(Self.configuration(faults: .init(resetRate: 1))) { api, server in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            let result = await api.push(Self.record, transport: .v1, token: token, clientAccountID: Self.client)
            // A reset is transient and has no status. Usually the client sees the connection
            // close; about once in five full parallel runs it saw nothing until its own timeout
            // although the sandbox had reset the connection (its counters said so) — left open,
            // see the closing note of issue 10. Either way nothing was applied.
            #expect(server.stats().faults["reset"] == 1, "sandbox: \(server.stats().faults)")
            #expect(result.httpStatus == nil)
            #expect(result.outcome == .transient(reason: "connection closed without an answer")
                    || result.outcome == .transient(reason: "timeout: no answer in time"), "\(result)")
            #expect(server.stats().accepted == 0)
        }
    }

    @Test func lostAnswerIsTransientTimeoutButWasApplied() async throws {
        // The token is minted through a client with a generous timeout: on a loaded machine even the first
        // connection can take longer than the short timeout the pushes are given.
        try await Self.with(Self.configuration(faults: .init(timeoutRate: 1))) { api, server in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            let impatient = APIClient(options: .init(baseURL: api.options.baseURL, requestTimeoutMs: 1_500))
            let result = await impatient.push(Self.record, transport: .v2, token: token, clientAccountID: Self.client)
            #expect(result == PushResult(outcome: .transient(reason: "timeout: no answer in time"), httpStatus: nil))
            #expect(server.stats().accepted == 1)
            let batch = await impatient.pushBatch([Self.record], token: token, clientAccountID: Self.client)
            #expect(batch.outcome == .transient(reason: "timeout: no answer in time"))
            try await impatient.shutdown()
        }
    }

    @Test func stormIsRateLimited() async throws {
        let clock = ManualClock(start: Self.start)
        let faults = SandboxConfiguration.Faults(stormEverySeconds: 10, stormLastingSeconds: 5)
        try await Self.with(Self.configuration(faults: faults), clock: clock) { api, _ in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            clock.advance(by: 10_000)
            #expect(await api.push(Self.record, transport: .v1, token: token, clientAccountID: Self.client).outcome == .rateLimited(retryAfterMs: nil))
        }
    }

    @Test func unreachableServerIsTransient() async throws {
        // Bind a port, learn it, stop the server: nothing listens there any more.
        let server = try SandboxServer(configuration: Self.configuration(), clock: ManualClock(start: Self.start), port: 0)
        let port = try await server.withRunning { $0 }
        let api = APIClient(options: .init(baseURL: "http://127.0.0.1:\(port)", connectTimeoutMs: 1_000, requestTimeoutMs: 2_000))
        let result = await api.push(Self.record, transport: .v1, token: BearerToken("unused"), clientAccountID: Self.client)
        try await api.shutdown()
        #expect(result.httpStatus == nil)
        #expect(result.outcome.kind == "transient")
        #expect(!result.outcome.description.contains("unused"))
    }

    @Test func batchPushAndPerRecordStatus() async throws {
        try await Self.with { api, _ in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            var bad = Self.record
            bad.labelName = "ab"
            let pushed = await api.pushBatch([Self.record, bad], token: token, clientAccountID: Self.client)
            #expect(pushed.outcome == .accepted)
            #expect(pushed.httpStatus == 200)
            let batchID = try #require(pushed.batchID)
            let status = try await api.batchStatus(batchID: batchID, token: token, clientAccountID: Self.client)
            #expect(status.batchID == batchID)
            #expect(status.data.map(\.outcome) == [
                .accepted, .rejected(reason: "Invalid input: dynamic_label_name: must be 3 to 40 characters"),
            ])
            let tooMany = await api.pushBatch(Array(repeating: Self.record, count: 501), token: token, clientAccountID: Self.client)
            #expect(tooMany == BatchPushResult(
                outcome: .rejected(reason: "call_records: must hold 1 to 500 records"), httpStatus: 400, batchID: nil
            ))
            await #expect(throws: APIError.self) {
                _ = try await api.batchStatus(batchID: UUID(), token: token, clientAccountID: Self.client)
            }
        }
    }

    @Test(arguments: [1, 2, 5, 1_000])
    func labelsFetchesEveryPage(pageSize: Int) async throws {
        try await Self.with(Self.configuration(labels: 5), labelsPageSize: pageSize) { api, _ in
            let token = try await api.mintToken(clientAccountID: Self.client, keyID: Self.keyID, apiKey: Self.apiKey).token
            let labels = try await api.labels(clientAccountID: Self.client, token: token)
            #expect(labels.count == 5)
            #expect(Set(labels.map(\.id)).count == 5)
            #expect(labels.first?.name == "Acme Deliveries")
            #expect(labels.first?.isDynamic == true)
            #expect(labels.filter(\.isDynamic).count == 3)
            #expect(labels.first?.info(clientAccountID: Self.client) == LabelInfo(
                id: Self.label, clientAccountID: Self.client, name: "Acme Deliveries", isDynamic: true
            ))
            do {
                _ = try await api.labels(clientAccountID: Self.client, token: BearerToken("nope"))
                Issue.record("labels with a bad token succeeded")
            } catch let error as APIError {
                #expect(error.code == .unauthorized)
            }
        }
    }
}
