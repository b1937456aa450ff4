public import Foundation
public import Planning
import AsyncHTTPClient
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Tuning of `APIClient`; every value has a documented default.
public struct APIClientOptions: Sendable, Hashable {
    /// Base URL of the API, without a trailing path. Default `http://127.0.0.1:8089` (the sandbox);
    /// the real service is `https://enterprise-portal-noneu.truecaller.com`.
    public var baseURL: String
    /// Time allowed to open a connection, in ms. Default 5,000.
    public var connectTimeoutMs: Int64
    /// Time allowed for a whole request, answer included, in ms. Default 10,000.
    public var requestTimeoutMs: Int64
    /// Concurrent HTTP/1.1 connections per host (HTTP/2 multiplexes on one). Default 16.
    public var maxConnectionsPerHost: Int
    /// How long an idle pooled connection is kept open, in ms. Default 60,000.
    public var idleTimeoutMs: Int64
    /// `limit` of each labels page. Default 1,000 (the documented example).
    public var labelsPageSize: Int
    /// Version segment of the batch status path (one documentation page shows `v3`). Default `v2`.
    public var batchStatusVersion: String
    /// Largest answer body read, in bytes. Default 8 MiB.
    public var maxResponseBytes: Int

    /// Creates options; see each property for its default.
    public init(
        baseURL: String = "http://127.0.0.1:8089",
        connectTimeoutMs: Int64 = 5_000,
        requestTimeoutMs: Int64 = 10_000,
        maxConnectionsPerHost: Int = 16,
        idleTimeoutMs: Int64 = 60_000,
        labelsPageSize: Int = 1_000,
        batchStatusVersion: String = "v2",
        maxResponseBytes: Int = 8 << 20
    ) {
        self.baseURL = baseURL
        self.connectTimeoutMs = connectTimeoutMs
        self.requestTimeoutMs = requestTimeoutMs
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.idleTimeoutMs = idleTimeoutMs
        self.labelsPageSize = labelsPageSize
        self.batchStatusVersion = batchStatusVersion
        self.maxResponseBytes = maxResponseBytes
    }
}

/// A freshly minted token. The API sends no expiry: tokens live 60 minutes from minting.
public struct MintedToken: Sendable, Hashable, CustomStringConvertible {
    /// The token (printing it shows only its fingerprint).
    public var token: BearerToken
    /// `created_at` as the server wrote it.
    public var createdAt: String

    /// Creates a minted token (for fakes in tests).
    public init(token: BearerToken, createdAt: String) {
        self.token = token
        self.createdAt = createdAt
    }

    public var description: String { "\(token) created at \(createdAt)" }
}

/// The answer to one real-time push.
public struct PushResult: Sendable, Hashable {
    /// What became of the record.
    public var outcome: PushOutcome
    /// The HTTP status, or `nil` when no answer came (reset, timeout, refused connection).
    public var httpStatus: Int?

    /// Creates a result (for fakes in tests).
    public init(outcome: PushOutcome, httpStatus: Int?) {
        self.outcome = outcome
        self.httpStatus = httpStatus
    }
}

/// The answer to one batch push.
public struct BatchPushResult: Sendable, Hashable {
    /// What became of the request as a whole; per-record results come from `batchStatus`.
    public var outcome: PushOutcome
    /// The HTTP status, or `nil` when no answer came.
    public var httpStatus: Int?
    /// The batch id of an accepted batch.
    public var batchID: UUID?

    /// Creates a result (for fakes in tests).
    public init(outcome: PushOutcome, httpStatus: Int?, batchID: UUID?) {
        self.outcome = outcome
        self.httpStatus = httpStatus
        self.batchID = batchID
    }
}

/// The HTTP client of the call-personalisation API: one shared AsyncHTTPClient with a
/// connection pool (keep-alive, HTTP/2 when the server offers it over TLS).
///
/// Pushes never throw: every answer, and every missing answer, becomes a `PushOutcome`.
/// The other calls throw `APIError`. Tokens and API keys are sent only in headers and bodies,
/// never put into an error or a description. Call `shutdown()` before dropping the client.
public final class APIClient: Sendable {
    /// The options the client was made with.
    public let options: APIClientOptions
    private let http: HTTPClient
    private let base: String

    /// Creates a client with its own connection pool on the shared event loop group.
    public init(options: APIClientOptions = APIClientOptions()) {
        self.options = options
        var base = options.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        var configuration = HTTPClient.Configuration(
            timeout: .init(
                connect: .milliseconds(options.connectTimeoutMs),
                read: .milliseconds(options.requestTimeoutMs)
            ),
            connectionPool: .init(
                idleTimeout: .milliseconds(options.idleTimeoutMs),
                concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, options.maxConnectionsPerHost)
            )
        )
        configuration.httpVersion = .automatic
        configuration.redirectConfiguration = .disallow
        // No distributed tracing: the client's default tracer (the no-op one, since nothing
        // bootstraps another) still parsed every request's URL a second time for span attributes,
        // about 2 % of the daemon's CPU per push.
        configuration.tracing.tracer = nil
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Closes every pooled connection; the client cannot be used afterwards.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// Runs `body` with a client for `options` and shuts the client down afterwards, whether
    /// `body` returns or throws (a client dropped without `shutdown()` stops the process).
    public static func withClient<T: Sendable>(
        options: APIClientOptions, _ body: (APIClient) async throws -> T
    ) async throws -> T {
        let client = APIClient(options: options)
        let value: T
        do {
            value = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return value
    }

    // MARK: - Tokens

    /// Mints a token: `POST /clients/{id}/token`. Throws `APIError` (`.unauthorized` for a wrong
    /// key, `.rateLimited` when 10 tokens were minted in the last 30 minutes).
    public func mintToken(clientAccountID: UUID, keyID: UUID, apiKey: String) async throws -> MintedToken {
        let body = try JSONEncoder().encode(TokenRequest(keyID: keyID, apiKey: apiKey))
        let answer: Answer
        do {
            answer = try await send(
                .POST, "/clients/\(Self.id(clientAccountID))/token",
                headers: [("X-Public-Access", "allow")], body: body
            )
        } catch {
            throw APIError(code: .transport, message: APIError.scrub(Self.transportReason(error), secrets: [apiKey]))
        }
        guard (200..<300).contains(answer.status) else {
            throw APIError.from(status: answer.status, body: ParsedBody(answer.body), retryAfter: answer.retryAfter, scrubbing: [apiKey])
        }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: answer.body), !decoded.token.isEmpty else {
            throw APIError(code: .unexpectedResponse, httpStatus: answer.status, message: "the token answer has no token")
        }
        return MintedToken(token: BearerToken(decoded.token), createdAt: decoded.createdAt)
    }

    /// Mints a token with a key pair.
    public func mintToken(clientAccountID: UUID, key: APIKey) async throws -> MintedToken {
        try await mintToken(clientAccountID: clientAccountID, keyID: key.keyID, apiKey: key.apiKey)
    }

    // MARK: - Pushes

    /// Pushes one record in real time: v1 (`/clients/{id}/dynamic_call_record`, the seed) or
    /// v2 (`/v2/clients/{id}/dynamic_call_record`). Never throws.
    public func push(_ record: CallRecord, transport: FieldNaming, token: BearerToken, clientAccountID: UUID) async -> PushResult {
        let path = switch transport {
        case .v1: "/clients/\(Self.id(clientAccountID))/dynamic_call_record"
        case .v2: "/v2/clients/\(Self.id(clientAccountID))/dynamic_call_record"
        }
        let body = Data(RecordFields.json(record, naming: transport))
        do {
            let answer = try await send(.POST, path, headers: [("Authorization", "Bearer \(token.secret)")], body: body)
            return PushResult(
                outcome: OutcomeClassifier.classify(status: answer.status, retryAfter: answer.retryAfter, body: answer.body),
                httpStatus: answer.status
            )
        } catch {
            return PushResult(outcome: .transient(reason: Self.transportReason(error)), httpStatus: nil)
        }
    }

    /// Pushes 1 to 500 records in one batch request (`POST /v2/clients/{id}/dynamic_call_records`,
    /// 60 requests per minute per token). `accepted` means the batch was taken; each record's
    /// result comes from `batchStatus`. Never throws.
    public func pushBatch(_ records: [CallRecord], token: BearerToken, clientAccountID: UUID) async -> BatchPushResult {
        guard let body = try? JSONEncoder().encode(BatchRequest(records: records)) else {
            return BatchPushResult(outcome: .rejected(reason: "the batch cannot be encoded as JSON"), httpStatus: nil, batchID: nil)
        }
        do {
            let answer = try await send(
                .POST, "/v2/clients/\(Self.id(clientAccountID))/dynamic_call_records",
                headers: [("Authorization", "Bearer \(token.secret)")], body: body
            )
            var outcome = OutcomeClassifier.classify(status: answer.status, retryAfter: answer.retryAfter, body: answer.body)
            var batchID: UUID?
            if outcome == .accepted {
                batchID = (try? JSONDecoder().decode(BatchResponse.self, from: answer.body))?.batchID
                if batchID == nil {
                    // Taken, but without an id its records cannot be followed up: retry decides.
                    outcome = .transient(reason: "the batch answer has no batch_id")
                }
            }
            return BatchPushResult(outcome: outcome, httpStatus: answer.status, batchID: batchID)
        } catch {
            return BatchPushResult(outcome: .transient(reason: Self.transportReason(error)), httpStatus: nil, batchID: nil)
        }
    }

    /// The per-record status of a batch: `GET /v2/clients/{id}/dynamic_call_records?batchId=…`.
    public func batchStatus(batchID: UUID, token: BearerToken, clientAccountID: UUID) async throws -> BatchStatusResponse {
        let path = "/\(options.batchStatusVersion)/clients/\(Self.id(clientAccountID))/dynamic_call_records?batchId=\(Self.id(batchID))"
        let answer = try await sendChecked(.GET, path, token: token)
        do {
            return try JSONDecoder().decode(BatchStatusResponse.self, from: answer.body)
        } catch {
            throw APIError(code: .unexpectedResponse, httpStatus: answer.status, message: "the batch status answer cannot be read")
        }
    }

    // MARK: - Labels

    /// Every label of the client account, fetching page after page
    /// (`GET /clients/{id}/labels?page=N&limit=L`) until a page is shorter than the limit
    /// (or brings no label not seen before). Throws `APIError`.
    public func labels(clientAccountID: UUID, token: BearerToken) async throws -> [Label] {
        let limit = max(1, options.labelsPageSize)
        var all: [Label] = []
        var seen = Set<UUID>()
        var page = 1
        while true {
            let path = "/clients/\(Self.id(clientAccountID))/labels?page=\(page)&limit=\(limit)"
            let answer = try await sendChecked(.GET, path, token: token)
            let labels: [Label]
            if let list = try? JSONDecoder().decode([Label].self, from: answer.body) {
                labels = list
            } else if let wrapped = try? JSONDecoder().decode(LabelPage.self, from: answer.body) {
                labels = wrapped.data
            } else {
                throw APIError(code: .unexpectedResponse, httpStatus: answer.status, message: "labels page \(page) cannot be read")
            }
            // A server that ignores `page` would repeat itself forever: stop when nothing is new.
            let new = labels.filter { seen.insert($0.id).inserted }
            all += new
            if labels.count < limit || new.isEmpty { return all }
            page += 1
        }
    }

    private struct LabelPage: Decodable {
        var data: [Label]
    }

    // MARK: - HTTP

    private struct Answer {
        var status: Int
        var retryAfter: String?
        var body: Data
    }

    private func sendChecked(_ method: HTTPMethod, _ path: String, token: BearerToken) async throws -> Answer {
        let answer: Answer
        do {
            answer = try await send(method, path, headers: [("Authorization", "Bearer \(token.secret)")], body: nil)
        } catch {
            throw APIError(code: .transport, message: APIError.scrub(Self.transportReason(error), secrets: [token.secret]))
        }
        guard (200..<300).contains(answer.status) else {
            throw APIError.from(status: answer.status, body: ParsedBody(answer.body), retryAfter: answer.retryAfter, scrubbing: [token.secret])
        }
        return answer
    }

    private func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)], body: Data?) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers {
            request.headers.add(name: name, value: value)
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await http.execute(request, timeout: .milliseconds(options.requestTimeoutMs))
        let buffer = try await response.body.collect(upTo: options.maxResponseBytes)
        return Answer(
            status: Int(response.status.code),
            retryAfter: response.headers.first(name: "Retry-After"),
            body: Data(buffer: buffer)
        )
    }

    /// A short, secret-free account of why no answer came.
    static func transportReason(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "timeout: no answer in time"
            case .connectTimeout: return "timeout: could not connect in time"
            case .remoteConnectionClosed: return "connection closed without an answer"
            case .cancelled: return "cancelled"
            default: return "HTTP client error: \(error)"
            }
        }
        if error is CancellationError { return "cancelled" }
        if let error = error as? IOError { return "connection failed: \(error.description)" }
        if let error = error as? ChannelError { return "connection failed: \(error)" }
        return "connection failed: \(type(of: error))"
    }

    private static func id(_ uuid: UUID) -> String {
        uuid.uuidString.lowercased()
    }
}
