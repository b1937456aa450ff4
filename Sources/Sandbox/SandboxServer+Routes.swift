import CallRecordAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Planning
import Logging
import Synchronization

// The endpoints. Order of checks for a push, each answering at the first failure:
//   404 unknown client → 401 token → 429 storm → 429 limiter → injected fault → 400 body/rules → 200.
// Faults apply to pushes only (real-time and batch); minting, labels and status are never faulted.

extension SandboxServer {
    func addRoutes(to router: Router<SandboxRequestContext>) {
        router.post("clients/:client/token") { request, context in
            try await self.mint(request, context)
        }
        router.post("clients/:client/dynamic_call_record") { request, context in
            try await self.pushRealtime(request, context, naming: .v1)
        }
        router.post("v2/clients/:client/dynamic_call_record") { request, context in
            try await self.pushRealtime(request, context, naming: .v2)
        }
        router.post("v2/clients/:client/dynamic_call_records") { request, context in
            try await self.pushBatch(request, context)
        }
        router.get("v2/clients/:client/dynamic_call_records") { request, context in
            self.batchStatus(request, context)
        }
        router.get("v3/clients/:client/dynamic_call_records") { request, context in
            self.batchStatus(request, context)
        }
        router.get("clients/:client/labels") { request, context in
            self.labels(request, context)
        }
        router.post("sandbox/revoke") { request, context in
            try await self.revoke(request, context)
        }
        router.post("sandbox/storm") { request, context in
            try await self.storm(request, context)
        }
        router.get("sandbox/stats") { _, _ in
            Self.json(.ok, Self.encode(self.stats()))
        }
    }

    // MARK: - Tokens

    private func mint(_ request: Request, _ context: SandboxRequestContext) async throws -> Response {
        guard let client = client(context) else { return notFound() }
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let publicAccess = request.headers[HTTPField.Name("X-Public-Access")!]?.lowercased() == "allow"
        let keyID = object?["key_id"] as? String
        let apiKey = object?["api_key"] as? String
        let now = clock.now()
        let decision = state.withLock { state -> MintDecision in
            guard publicAccess else {
                state.countFailedMint()
                return .invalid("X-Public-Access: allow header is required")
            }
            guard object != nil else {
                state.countFailedMint()
                return .invalid("body: must be a JSON object")
            }
            return state.mint(client: client, keyID: keyID, apiKey: apiKey, now: now)
        }
        switch decision {
        case .invalid(let message):
            return Self.error(.badRequest, "invalid-input", message)
        case .wrongKey:
            return Self.error(.unauthorized, "authorization-error", "invalid key_id or api_key")
        case .limited:
            return Self.error(.tooManyRequests, "rate-limit-exceeded", "token creation limit reached, try again later")
        case .minted(let token):
            if let issuedTokensFile {
                do {
                    try issuedTokensFile.append(token + "\n")
                } catch {
                    logger.error("cannot write the issued-tokens file", metadata: ["error": "\(error)"])
                }
            }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let createdAt = formatter.string(from: Date(timeIntervalSince1970: Double(now) / 1000))
            return Self.json(.ok, "{\"token\":\(JSONText.string(token)),\"created_at\":\"\(createdAt)\"}")
        }
    }

    // MARK: - Pushes

    /// A push past the 404 / 401 / 429 checks and the injected errors: what the endpoint works on.
    private struct AdmittedPush {
        let client: ClientInfo
        let fingerprint: String
        let fault: Fault
        let now: Int64
        let body: ByteBuffer
    }

    /// The common start of every push: client, token, limiter, then the fault (500/503 answered
    /// here, reset closes the connection here). Returns the answer, or the admitted push.
    private func admitPush(
        _ kind: PushKind, _ request: Request, _ context: SandboxRequestContext, maxBody: Int
    ) async throws -> PushStart {
        guard let client = client(context) else { return .answered(notFound()) }
        let bearer = Self.bearer(request)
        let body = try await request.body.collect(upTo: maxBody)
        let now = clock.now()
        let admission = state.withLock { $0.admit(kind, client: client.id, bearer: bearer, now: now) }
        guard case .admitted(let fingerprint, let sequence) = admission else { return .answered(refusal(admission)) }

        let fault = try await applyFault(sequence: sequence, now: now)
        switch fault {
        case .serverError(let status):
            state.withLock { $0.finish(fingerprint: fingerprint, accepted: 0, fault: fault) }
            return .answered(Self.error(.init(code: status), "internal-error", "the request was not processed, try again"))
        case .reset:
            state.withLock { $0.finish(fingerprint: fingerprint, accepted: 0, fault: fault) }
            return .answered(try await resetConnection(context))
        case .none, .timeout:
            return .admitted(AdmittedPush(client: client, fingerprint: fingerprint, fault: fault, now: now, body: body))
        }
    }

    /// Either the answer already decided, or the push to work on.
    private enum PushStart {
        case answered(Response)
        case admitted(AdmittedPush)
    }

    private func pushRealtime(_ request: Request, _ context: SandboxRequestContext, naming: FieldNaming) async throws -> Response {
        let push: AdmittedPush
        switch try await admitPush(.realtime, request, context, maxBody: context.maxUploadSize) {
        case .admitted(let admitted): push = admitted
        case .answered(let response): return response
        }
        let (client, fingerprint, fault, now, body) = (push.client, push.fingerprint, push.fault, push.now, push.body)

        let record: CallRecord
        let parser = naming == .v1 ? RecordParser.v1 : RecordParser.v2
        if let parsed = body.withUnsafeReadableBytes({ parser.parse($0) }) {
            record = parsed
        } else {
            // Not the plain shape: the decoder decodes it or names what is wrong.
            do {
                let data = Data(body.readableBytesView)
                switch naming {
                case .v1: record = try JSONDecoder().decode(V1Record.self, from: data).record
                case .v2: record = try JSONDecoder().decode(V2Record.self, from: data).record
                }
            } catch {
                return reject(Self.decodingMessage(error), fingerprint: fingerprint)
            }
        }
        let violations = validator.validate(
            record, naming: naming, clientAccountID: client.id, now: now, label: allLabels[record.labelID]
        )
        if let violation = violations.first {
            return reject(violation.description, fingerprint: fingerprint)
        }
        if recordFile != nil {
            let line = RecordFile.line(
                receivedAt: now, clientAccountID: client.idText, transport: naming == .v1 ? "v1" : "v2",
                fingerprint: fingerprint, record: record
            )
            if let failure = appendToRecordFile(line, fingerprint: fingerprint) { return failure }
        }
        state.withLock { $0.finish(fingerprint: fingerprint, accepted: 1, fault: fault) }
        if fault == .timeout {
            return try await holdWithoutAnswer(context)
        }
        switch naming {
        case .v1:
            return Self.json(
                .ok,
                "{\"status\":\"success\",\"message\":\"Records Uploaded Successfully. BatchID: \(RecordParser.lowercaseText(UUID()))\"}"
            )
        case .v2:
            return Self.v2Success
        }
    }

    private func pushBatch(_ request: Request, _ context: SandboxRequestContext) async throws -> Response {
        let push: AdmittedPush
        switch try await admitPush(.batch, request, context, maxBody: max(context.maxUploadSize, 16 << 20)) {
        case .admitted(let admitted): push = admitted
        case .answered(let response): return response
        }
        let (client, fingerprint, fault, now, body) = (push.client, push.fingerprint, push.fault, push.now, push.body)

        let records: [CallRecord]
        do {
            records = try JSONDecoder().decode(BatchRequest.self, from: Data(body.readableBytesView)).callRecords.map(\.record)
        } catch {
            return reject(Self.decodingMessage(error), fingerprint: fingerprint)
        }
        let maxRecords = configuration.limits.batchMaxRecords
        guard (1...maxRecords).contains(records.count) else {
            return reject("call_records: must hold 1 to \(maxRecords) records", fingerprint: fingerprint)
        }

        var statuses: [BatchRecordStatus] = []
        statuses.reserveCapacity(records.count)
        var lines = ""
        var rejections: [String] = []
        for record in records {
            let violations = validator.validate(
                record, naming: .v2, clientAccountID: client.id, now: now, label: allLabels[record.labelID]
            )
            let id = RecordParser.lowercaseText(UUID())
            if let violation = violations.first {
                rejections.append(violation.description)
                statuses.append(BatchRecordStatus(
                    id: id, record: record,
                    statusInfo: StatusInfo(status: "failed", message: "Invalid input: \(violation.description)", field: violation.field)
                ))
            } else {
                statuses.append(BatchRecordStatus(id: id, record: record, statusInfo: StatusInfo(status: "success", message: "Record processed successfully")))
                if recordFile != nil {
                    lines += RecordFile.line(
                        receivedAt: now, clientAccountID: client.idText, transport: "batch", fingerprint: fingerprint, record: record
                    )
                }
            }
        }
        if !lines.isEmpty, let failure = appendToRecordFile(lines, fingerprint: fingerprint) {
            return failure
        }
        let batchID = UUID()
        batches.store(batchID, BatchStore.Batch(clientAccountID: client.id, statuses: statuses))
        state.withLock { state in
            state.finish(fingerprint: fingerprint, accepted: records.count - rejections.count, fault: fault)
            state.countBatch(records: records.count)
            for reason in rejections { state.countRejected(reason) }
        }
        if fault == .timeout {
            return try await holdWithoutAnswer(context)
        }
        return Self.json(.ok, "{\"batch_id\":\"\(batchID.uuidString.lowercased())\"}")
    }

    // MARK: - Reads

    private func batchStatus(_ request: Request, _ context: SandboxRequestContext) -> Response {
        guard let client = client(context) else { return notFound() }
        let bearer = Self.bearer(request)
        guard state.withLock({ $0.authenticate(client: client.id, bearer: bearer, now: clock.now()) }) else {
            return Self.unauthorized
        }
        guard let text = request.uri.queryParameters.get("batchId"), let batchID = UUID(uuidString: text) else {
            return Self.error(.badRequest, "invalid-input", "batchId: must be a UUID")
        }
        guard let batch = batches.batch(batchID), batch.clientAccountID == client.id else {
            return Self.error(.notFound, "not-found", "unknown batch")
        }
        return Self.json(.ok, Self.encode(BatchStatusResponse(clientAccountID: client.id, batchID: batchID, data: batch.statuses)))
    }

    private func labels(_ request: Request, _ context: SandboxRequestContext) -> Response {
        guard let client = client(context) else { return notFound() }
        let bearer = Self.bearer(request)
        guard state.withLock({ $0.authenticate(client: client.id, bearer: bearer, now: clock.now()) }) else {
            return Self.unauthorized
        }
        let query = request.uri.queryParameters
        let page = query.get("page").map { Int($0) } ?? 1
        let limit = query.get("limit").map { Int($0) } ?? 1000
        guard let page, page >= 1 else { return Self.error(.badRequest, "invalid-input", "page: must be an integer of at least 1") }
        guard let limit, (1...1000).contains(limit) else {
            return Self.error(.badRequest, "invalid-input", "limit: must be an integer from 1 to 1000")
        }
        let start = min(client.listing.count, (page - 1) * limit)
        let end = min(client.listing.count, start + limit)
        return Self.json(.ok, Self.encode(Array(client.listing[start..<end])))
    }

    // MARK: - Controls

    private func revoke(_ request: Request, _ context: SandboxRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 << 10)
        var fingerprint: String?
        if body.readableBytes > 0 {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
                return Self.error(.badRequest, "invalid-input", "body: must be {} or {\"token\": \"<fingerprint>\"}")
            }
            if let value = object["token"] {
                guard let text = value as? String, !text.isEmpty else {
                    return Self.error(.badRequest, "invalid-input", "token: must be a token fingerprint")
                }
                fingerprint = text
            }
        }
        let count = revoke(fingerprint: fingerprint)
        return Self.json(.ok, "{\"revoked\":\(count)}")
    }

    private func storm(_ request: Request, _ context: SandboxRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 << 10)
        let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        guard let seconds = (object?["seconds"] as? NSNumber)?.doubleValue, seconds > 0, seconds <= 3_600 else {
            return Self.error(.badRequest, "invalid-input", "body: must be {\"seconds\": N} with 0 < N ≤ 3600")
        }
        let milliseconds = Int64((seconds * 1000).rounded())
        startStorm(milliseconds: milliseconds)
        return Self.json(.ok, "{\"storm_ms\":\(milliseconds)}")
    }

    // MARK: - Helpers

    private func client(_ context: SandboxRequestContext) -> ClientInfo? {
        guard let text = context.parameters.get("client") else { return nil }
        if let client = clientsByText[text] { return client }
        return UUID(uuidString: text).flatMap { clients[$0] }
    }

    private func notFound() -> Response {
        state.withLock { $0.countNotFound() }
        return Self.error(.notFound, "not-found", "unknown client account")
    }

    private func refusal(_ admission: Admission) -> Response {
        switch admission {
        case .unauthorized: Self.unauthorized
        case .storm, .rateLimited: Self.rateLimited
        case .admitted: Self.error(.internalServerError, "internal-error", "unexpected state")
        }
    }

    /// Appends accepted records' lines to the record file, if any; on failure the push is not
    /// accepted and the answer is a 500.
    private func appendToRecordFile(_ lines: String, fingerprint: String) -> Response? {
        guard let recordFile else { return nil }
        do {
            try recordFile.append(lines)
            return nil
        } catch {
            logger.error("record file write failed; answering 500", metadata: ["error": "\(error)"])
            state.withLock { $0.finish(fingerprint: fingerprint, accepted: 0, fault: .none) }
            return Self.error(.internalServerError, "internal-error", "the records could not be stored")
        }
    }

    private func reject(_ reason: String, fingerprint: String) -> Response {
        state.withLock { state in
            state.countRejected(reason)
            state.finish(fingerprint: fingerprint, accepted: 0, fault: .none)
        }
        return Self.error(.badRequest, "invalid-input", reason)
    }

    /// Draws the push's fault and waits out its added latency.
    private func applyFault(sequence: UInt64, now: Int64) async throws -> Fault {
        guard !configuration.faults.isEmpty else { return .none }
        let (fault, latency) = plan.draw(sequence: sequence)
        if latency > 0 {
            try await clock.sleep(until: now + latency)
        }
        return fault
    }

    /// Closes the connection without an answer.
    private func resetConnection(_ context: SandboxRequestContext) async throws -> Response {
        try? await context.channel.close()
        throw CancellationError()
    }

    /// Keeps the connection open and never answers; returns (by throwing) once it is closed.
    private func holdWithoutAnswer(_ context: SandboxRequestContext) async throws -> Response {
        await held.hold(context.channel)
        throw CancellationError()
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        var utf8 = value.utf8[...]
        for expected in "bearer".utf8 {
            guard let byte = utf8.popFirst(), byte | 0x20 == expected else { return nil }
        }
        let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let first = utf8.first, isSpace(first) else { return nil }
        while let byte = utf8.first, isSpace(byte) { utf8.removeFirst() }
        while let byte = utf8.last, isSpace(byte) { utf8.removeLast() }
        return utf8.isEmpty ? nil : String(Substring(utf8))
    }

    static let unauthorized = error(.unauthorized, "authorization-error", "missing, invalid or expired token")
    static let rateLimited = error(.tooManyRequests, "rate-limit-exceeded", "too many requests for this token")
    static let v2Success = json(.ok, "{\"status_info\":{\"status\":\"success\",\"message\":\"Record processed successfully\"}}")

    static func error(_ status: HTTPResponse.Status, _ slug: String, _ message: String) -> Response {
        json(status, "{\"slug\":\(JSONText.string(slug)),\"message\":\(JSONText.string(message))}")
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// `<field>: <rule>` for a body that does not decode.
    static func decodingMessage(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "body: must be a JSON object" }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(describe(context.codingPath + [key])): is required"
        case .valueNotFound(_, let context):
            return "\(describe(context.codingPath)): is required"
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty { return "body: must be a JSON object" }
            let expected: String
            switch type {
            case is Int64.Type, is Int.Type: expected = "an integer (epoch ms)"
            case is String.Type: expected = "a string"
            case is [Any].Type: expected = "an array"
            default: expected = "an object"
            }
            return "\(describe(context.codingPath)): must be \(expected)"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "body: must be valid JSON" }
            let path = describe(context.codingPath)
            return path.hasSuffix("_id") ? "\(path): must be a UUID" : "\(path): has an invalid value"
        @unknown default:
            return "body: cannot be read"
        }
    }
}
