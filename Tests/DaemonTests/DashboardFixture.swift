import AsyncHTTPClient
@testable import Daemon
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Planning
import Postgres
import Prometheus
import Store
import Synchronization
import TestSupport
import Testing

/// 2026-12-01T00:00:00Z in epoch ms.
let december: Int64 = 1_796_083_200_000
let hour: Int64 = 3_600_000
/// The instant the dashboard is read at: two minutes into the first window's push.
let readAt: Int64 = december + hour + 120_000
/// A marker stored as a token's ciphertext: it must never reach a page.
let ciphertextMarker = "CIPHERTEXT-MARKER-7f3a"

/// Two campaigns of one fresh client account, one named like an XSS attack, each with two
/// stored windows; the first window of each is materialised and its records pushed: accepted
/// after a 429, or rejected with a reason that is itself markup. One token and one mint.
struct DashboardFixture {
    var client: UUID
    var evil: Int64
    var plain: Int64
    var windows: [Int64: [Int64]]
    var store: DeliveryStore

    static let evilName = "<script>alert(1)</script>"
    /// Call reasons may not hold & or / (the schema refuses them); quotes and markup they may.
    static let evilReason = "Call \"Jerry\" <b>it's here"
    static let rejectReason = "<img src=x onerror=alert(2)> & \"more\""

    static func make(_ connection: PostgresConnection) async throws -> DashboardFixture {
        let client = UUID(), label = UUID()
        try await CampaignSeed.label(client: client, label: label, on: connection)
        var evil = CampaignSeed(client: client, label: label, startsAt: december, endsAt: december + 48 * hour)
        evil.name = evilName
        evil.callReason = evilReason
        evil.receivers = 3
        var plain = CampaignSeed(client: client, label: label, startsAt: december, endsAt: december + 48 * hour)
        plain.name = "Winter sale"
        plain.receivers = 2
        let ids = [try await evil.insert(on: connection), try await plain.insert(on: connection)]
        let store = DeliveryStore(instance: "dash-test-\(UUID().uuidString.prefix(6))", transport: .v1)
        _ = try await store.ensureAuditPartitions(now: december, on: connection)
        var windows: [Int64: [Int64]] = [:]
        for id in ids {
            let planned = [
                PlannedWindow(startsAt: december + 2 * hour, endsAt: december + 3 * hour, deadline: december + 2 * hour - 600_000, pushAt: december + hour),
                PlannedWindow(startsAt: december + 26 * hour, endsAt: december + 27 * hour, deadline: december + 26 * hour - 600_000, pushAt: december + 25 * hour),
            ]
            _ = try await store.syncWindows(campaignID: id, clientAccountID: client, windows: planned, now: december, on: connection)
            windows[id] = try await connection.query("SELECT id FROM callwindow.windows WHERE campaign_id = $1 ORDER BY starts_at", id)
                .map { try $0.decode("id") }
            _ = try await store.materialize(windowID: windows[id]![0], now: december, on: connection)
        }
        let claimed = try await store.claim(clientAccountID: client, owner: store.instance, now: december + hour, limit: 100, leaseMs: 600_000, on: connection)
        #expect(claimed.count == 5)
        let rejected = claimed.first { $0.campaignID == ids[0] }?.id
        let results = claimed.enumerated().map { index, delivery in
            delivery.id == rejected
                ? DeliveryResult(delivery: delivery, next: .rejected, outcome: .rejected, reason: rejectReason, attempts: [
                    .init(at: december + hour + 1_000, tokenFingerprint: "a1b2c3d4e5f6", httpStatus: 400, latencyMs: 31, outcome: .rejected, reason: rejectReason),
                ])
                : DeliveryResult(delivery: delivery, next: .accepted, outcome: .accepted, attempts: [
                    .init(at: december + hour + 1_000 + Int64(index), tokenFingerprint: "a1b2c3d4e5f6", httpStatus: 429, latencyMs: 12, outcome: .rateLimited, reason: "rate limited"),
                    .init(at: december + hour + 61_000 + Int64(index), tokenFingerprint: "a1b2c3d4e5f6", httpStatus: 200, latencyMs: 20, outcome: .accepted),
                ])
        }
        try await store.record(results, owner: store.instance, now: december + hour + 62_000, on: connection)
        try await connection.execute(
            """
            INSERT INTO callwindow.tokens (client_account_id, fingerprint, ciphertext, minted_at, expires_at)
            VALUES ($1, 'a1b2c3d4e5f6', $2, callwindow.at_ms($3), callwindow.at_ms($4))
            """, client, Data(ciphertextMarker.utf8), december + hour - 60_000, december + 2 * hour)
        try await connection.execute(
            "INSERT INTO callwindow.token_mints (client_account_id, minted_at, instance, fingerprint) VALUES ($1, callwindow.at_ms($2), 'dash-test', 'a1b2c3d4e5f6')",
            client, december + hour - 60_000)
        return DashboardFixture(client: client, evil: ids[0], plain: ids[1], windows: windows, store: store)
    }
}

/// One HTTP answer.
struct Answer {
    var status: Int
    var body: String
    var headers: [(String, String)]
}

/// An operations server with the dashboard on 127.0.0.1, a free port, reading the test database
/// at the fixed instant `now`, running while `body` runs; `body` gets a GET function whose
/// `token` is sent as a bearer token, or as the whole `Authorization` value when it holds a space.
func withDashboardServer<T>(
    accounts: [UUID], now: Int64 = readAt, authToken: String? = nil,
    _ body: (_ get: (_ path: String, _ token: String?) async throws -> Answer) async throws -> T
) async throws -> T {
    try await withDashboard(accounts: accounts, now: now, authToken: authToken) { base in
        try await body { path, token in
            try await send(base + path, headers: token.map { ["Authorization": $0.contains(" ") ? $0 : "Bearer \($0)"] } ?? [:])
        }
    }
}

/// The server of `withDashboardServer` (with `actions`, its buttons); `body` gets its base URL.
func withDashboard<T>(
    accounts: [UUID], now: Int64 = readAt, authToken: String? = nil, actions: Bool = false, _ body: (_ base: String) async throws -> T
) async throws -> T {
    try await closing(try await TestDatabase.pool(maxConnections: 4)) { pool in
        let port = Mutex(0)
        let server = OperationsServer(
            host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry(), database: pool, plannerLastCycleAt: { now },
            plannerStaleAfterMs: 60_000, now: { now },
            dashboard: Dashboard(database: pool, accounts: accounts, requestsPerSecondPerToken: 100, actions: actions, now: { now }),
            authToken: authToken, onListening: { bound in port.withLock { $0 = bound } }, logger: Logger(label: "test.http"))
        return try await withServices([server], logger: Logger(label: "test.services")) {
            try await waitUntil("the operations server listens") { port.withLock { $0 } != 0 }
            return try await body("http://127.0.0.1:\(port.withLock { $0 })")
        }
    }
}

/// A client that does not follow redirects (it lives as long as the test process).
let directClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))

/// One HTTP request (30 s limit); redirects are not followed.
func send(_ url: String, method: HTTPMethod = .GET, headers: [String: String] = [:], body: String? = nil) async throws -> Answer {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await directClient.execute(request, timeout: .seconds(30))
    let buffer = try await response.body.collect(upTo: 32 << 20)
    return Answer(status: Int(response.status.code), body: String(buffer: buffer), headers: response.headers.map { ($0.name, $0.value) })
}
