public import Foundation
public import Hummingbird
import HTTPTypes
import Planning
public import Postgres
import Store

/// The read-only web dashboard on the operations port: `/`, `/campaigns/{id}`,
/// `/campaigns/{id}/windows/{window_id}`, `/audit`, `/audit.csv`, `/live.json` and its
/// stylesheet and script. Every page is a few indexed queries (`DashboardStore`).
public struct Dashboard: Sendable {
    let database: PostgresPool
    /// The accounts served now (a reload changes them).
    let accounts: @Sendable () -> [UUID]
    let requestsPerSecondPerToken: Double
    let now: @Sendable () -> Int64
    /// Whether the campaign pages offer pause, resume and cancel (`http.actions`).
    let actions: Bool
    let store = DashboardStore()
    let live: LiveCache
    let actionGuard = ActionGuard()

    /// A dashboard of the configured `accounts`, reading `database`, timed by `now` (epoch ms);
    /// with `actions`, campaign pages offer pause, resume and cancel.
    public init(database: PostgresPool, accounts: [UUID], requestsPerSecondPerToken: Double, actions: Bool = false,
                now: @escaping @Sendable () -> Int64) {
        self.init(database: database, accounts: { accounts }, requestsPerSecondPerToken: requestsPerSecondPerToken, actions: actions, now: now)
    }

    /// A dashboard of the accounts `accounts` returns at each request (those a reload leaves).
    public init(database: PostgresPool, accounts: @escaping @Sendable () -> [UUID], requestsPerSecondPerToken: Double, actions: Bool = false,
                now: @escaping @Sendable () -> Int64) {
        self.database = database
        self.accounts = accounts
        self.requestsPerSecondPerToken = requestsPerSecondPerToken
        self.actions = actions
        self.now = now
        live = LiveCache()
    }

    /// Adds the dashboard's routes to `router`.
    public func register(on router: Router<BasicRequestContext>) {
        router.get("/") { request, _ -> Response in
            let now = self.now()
            let before = request.uri.queryParameters.get("before").flatMap { Int64($0) }
            let overview = try await self.overview(now: now, before: before)
            return Self.html(DashboardPages.overview(overview, now: now, requestsPerSecondPerToken: self.requestsPerSecondPerToken))
        }
        router.get("/campaigns/{id}") { _, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self) else { return self.notFound("no such campaign") }
            let now = self.now()
            let page = try await self.database.withConnection { connection -> String? in
                guard let campaign = try await self.store.campaign(id, on: connection) else { return nil }
                let offered = self.actions ? OperatorAction.offered(for: CampaignStatus(rawValue: campaign.status)) : nil
                return DashboardPages.campaign(campaign, windows: try await self.store.windows(of: id, on: connection), actions: offered, now: now)
            }
            return page.map(Self.html) ?? self.notFound("campaign \(id) does not exist")
        }
        router.get("/campaigns/{id}/windows/{window_id}") { _, context -> Response in
            guard let id = context.parameters.get("id", as: Int64.self), let windowID = context.parameters.get("window_id", as: Int64.self) else {
                return self.notFound("no such window")
            }
            let now = self.now()
            let page = try await self.database.withConnection { connection -> String? in
                guard let campaign = try await self.store.campaign(id, on: connection),
                      let window = try await self.store.window(windowID, of: id, on: connection) else { return nil }
                let until = max(now, window.endsAt) + 86_400_000
                return DashboardPages.window(
                    campaign, window, queued: try await self.store.recordsByState(window: windowID, of: id, on: connection),
                    audit: try await self.store.audit(window: windowID, of: id, until: until, on: connection),
                    errors: try await self.store.errors(window: windowID, of: id, until: until, on: connection), now: now)
            }
            return page.map(Self.html) ?? self.notFound("campaign \(id) has no window \(windowID)")
        }
        router.get("/audit") { request, _ -> Response in
            let now = self.now()
            let filter = Self.filter(request, now: now)
            let cursor = request.uri.queryParameters.get("after").flatMap { AuditCursor($0) }
            let limit = min(max(request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100, 1), 500)
            let page = try await self.database.withConnection { try await self.store.audit(filter, after: cursor, limit: limit, on: $0) }
            return Self.html(DashboardPages.audit(page, filter: filter, limit: limit, now: now))
        }
        router.get("/audit.csv") { request, _ -> Response in
            let filter = Self.filter(request, now: self.now())
            let (database, store) = (self.database, self.store)
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: DashboardPages.csvHeader))
                var cursor: AuditCursor?
                repeat {
                    let page = try await database.withConnection { try await store.audit(filter, after: cursor, limit: 1_000, on: $0) }
                    try await writer.write(ByteBuffer(string: page.entries.map(DashboardPages.csvRow).joined()))
                    cursor = page.next
                } while cursor != nil
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"audit.csv\""], body: body)
        }
        router.get("/live.json") { _, _ -> Response in
            let body = try await self.live.snapshot(now: self.now()) { now in
                let snapshot = LiveSnapshot(at: HTMLText.instant(now), values: DashboardPages.liveValues(try await self.overview(now: now)))
                return String(decoding: try JSONEncoder().encode(snapshot), as: UTF8.self)
            }
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        if actions { registerActions(on: router) }
        router.get("/dashboard.css") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: DashboardStyle.css)))
        }
        router.get("/dashboard.js") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: DashboardStyle.script)))
        }
    }

    /// Campaigns listed on one page of the overview (`/live.json` refreshes the first page's).
    static let campaignsPerPage = 50

    /// Every account's figures and one page of the campaigns: the newest, or those with an id
    /// below `before`. A few indexed statements per account and one for the page, whatever the
    /// number of campaigns.
    func overview(now: Int64, before: Int64? = nil) async throws -> DashboardPages.Overview {
        try await database.withConnection { connection in
            let served = self.accounts()
            var summaries: [AccountSummary] = []
            for account in served { summaries.append(try await store.account(account, now: now, on: connection)) }
            let campaigns = served.isEmpty ? CampaignPage(campaigns: [], total: 0, next: nil)
                : try await store.campaigns(of: served, before: before, limit: Self.campaignsPerPage, on: connection)
            return .init(accounts: summaries, campaigns: campaigns, before: before)
        }
    }

    /// The filter a request asks for. Without a campaign and a start, the last 24 hours (read
    /// newest first through `push_attempts_attempted_at_idx`; a receiver through
    /// `push_attempts_receiver_idx`), so a bare /audit never walks months of rows.
    static func filter(_ request: Request, now: Int64) -> AuditFilter {
        func text(_ key: String) -> String? {
            guard let value = request.uri.queryParameters.get(key)?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        var filter = AuditFilter(
            campaignID: text("campaign").flatMap { Int64($0) }, outcome: text("outcome").flatMap { AuditOutcome(rawValue: $0) },
            receiver: text("receiver"), from: text("from").flatMap { Int64($0) }, until: text("until").flatMap { Int64($0) })
        if filter.campaignID == nil && filter.from == nil { filter.from = now - 86_400_000 }
        return filter
    }

    static func html(_ page: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    func notFound(_ message: String) -> Response {
        problem(.notFound, "Not found", message)
    }

    /// An error page: `title` and `message`, escaped, with `status`.
    func problem(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> Response {
        let page = DashboardPages.layout(title: title, now: now(), "<h1>\(HTMLText.escape(title))</h1><p>\(HTMLText.escape(message))</p>")
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}

/// What `/live.json` answers.
struct LiveSnapshot: Codable {
    var at: String
    var values: [String: String]
}

/// The live endpoint's shared refresh: at most one database read per second per daemon, however
/// many browsers poll (callers arriving while a refresh is under way may refresh too).
actor LiveCache {
    private var cached: (at: Int64, body: String)?

    func snapshot(now: Int64, _ build: @Sendable (Int64) async throws -> String) async throws -> String {
        if let cached, now - cached.at < 1_000, now >= cached.at { return cached.body }
        let body = try await build(now)
        cached = (now, body)
        return body
    }
}
