import Config
@testable import Daemon
import Foundation
import Planning
import Store
import Synchronization
import Testing

@Suite("Dashboard rendering, escaping, colours and access rule (no database)", .timeLimit(.minutes(1)))
struct DashboardRenderingTests {
    @Test("HTML escaping: markup, quotes and ampersands become entities")
    func escaping() {
        #expect(HTMLText.escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(HTMLText.escape(#"a "b" & 'c'"#) == "a &quot;b&quot; &amp; &#39;c&#39;")
        #expect(HTMLText.escape("&amp;") == "&amp;amp;")
        #expect(HTMLText.escape("Grüße ☎︎") == "Grüße ☎︎")
        #expect(HTMLText.query("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9")
    }

    @Test("a campaign named <script> is text in the overview, its status and problems too")
    func overviewEscapes() throws {
        let row: [String: Any] = [
            "campaign_id": 7, "client_account_id": UUID().uuidString, "name": "<script>alert(1)</script>", "status": "active",
            "windows": 1, "records": 4, "pending": 1, "in_flight": 0, "accepted": 2, "rejected": 1, "expired": 0, "cancelled": 0,
            "max_late_by_ms": 0, "problems": ["label \"<b>x</b>\" & co"],
        ]
        let campaign = try JSONDecoder().decode(CampaignProgress.self, from: JSONSerialization.data(withJSONObject: row))
        let summary = AccountSummary(clientAccountID: campaign.clientAccountID, tokens: [], mintsLast30Minutes: 0, queueDepth: 1, minutes: [])
        let page = DashboardPages.overview(.init(accounts: [summary], campaigns: [campaign]), now: december, requestsPerSecondPerToken: 100)
        #expect(!page.contains("<script>alert(1)"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(page.contains("label &quot;&lt;b&gt;x&lt;/b&gt;&quot; &amp; co"))
    }

    @Test("the overview links to older campaigns; a later page says its counters are not live and links back")
    func overviewPages() throws {
        func campaign(_ id: Int64) throws -> CampaignProgress {
            let row: [String: Any] = [
                "campaign_id": id, "client_account_id": UUID().uuidString, "name": "c\(id)", "status": "active", "windows": 1, "records": 4,
                "pending": 1, "in_flight": 0, "accepted": 3, "rejected": 0, "expired": 0, "cancelled": 0, "max_late_by_ms": 0, "problems": [String](),
            ]
            return try JSONDecoder().decode(CampaignProgress.self, from: JSONSerialization.data(withJSONObject: row))
        }
        let summary = AccountSummary(clientAccountID: UUID(), tokens: [], mintsLast30Minutes: 0, queueDepth: 0, minutes: [])
        let newest = DashboardPages.overview(.init(accounts: [summary], campaigns: CampaignPage(campaigns: [try campaign(9), try campaign(8)], total: 3, next: 8)),
                                             now: december, requestsPerSecondPerToken: 100)
        #expect(newest.contains(#"<a rel="next" href="/?before=8">"#))
        #expect(newest.contains(#"<span data-live="c-9-accepted">3</span>"#))
        #expect(!newest.contains("← Newest campaigns"))
        let older = DashboardPages.overview(.init(accounts: [summary], campaigns: CampaignPage(campaigns: [try campaign(7)], total: 3, next: nil), before: 8),
                                            now: december, requestsPerSecondPerToken: 100)
        #expect(older.contains(#"<a href="/">← Newest campaigns</a>"#) && !older.contains(#"rel="next""#))
        #expect(!older.contains(#"data-live="c-7-accepted""#) && older.contains("3 accepted"))
        #expect(older.contains("as of loading"))
        let past = DashboardPages.overview(.init(accounts: [summary], campaigns: CampaignPage(campaigns: [], total: 3, next: nil), before: 1),
                                           now: december, requestsPerSecondPerToken: 100)
        #expect(past.contains("No older campaigns") && !past.contains("No campaigns yet"))
    }

    @Test("an empty overview says what to do")
    func emptyStates() {
        let summary = AccountSummary(clientAccountID: UUID(), tokens: [], mintsLast30Minutes: 0, queueDepth: 0, minutes: [])
        let page = DashboardPages.overview(.init(accounts: [summary], campaigns: []), now: december, requestsPerSecondPerToken: 100)
        #expect(page.contains("No campaigns yet — insert one with SQL, see README."))
    }

    @Test("the stylesheet, the dashboard's SVG legend and the preview's SVG legend use the same colour constants")
    func coloursAreShared() {
        let css = DashboardStyle.css
        let expected: [String: String] = [
            "accepted": TimelinePalette.accepted, "rejected": TimelinePalette.rejected, "expired": TimelinePalette.expired,
            "cancelled": TimelinePalette.cancelledStroke, "pending": TimelinePalette.pending,
        ]
        for segment in DashboardStyle.segments {
            #expect(expected[segment.key] == segment.colour, "\(segment.key)")
            #expect(css.contains(".s-\(segment.key){background:\(segment.colour)}"), "\(segment.key)")
        }
        let svg = DashboardTimeline.svg([], now: december)
        for entry in DashboardTimeline.legend {
            #expect(svg.contains(#"fill="\#(entry.colour)""#), "\(entry.label)")
        }
        // The window states the dashboard colours are those of the preview's legend.
        let legend = Dictionary(uniqueKeysWithValues: DashboardTimeline.legend.map { ($0.label, $0.colour) })
        let preview = PlanReport(now: december, capacity: Capacity(tokens: 1), campaigns: []).svg()
        for label in ["planned window", "late (misses its deadline)", "expired"] {
            let colour = legend[label] ?? "missing"
            #expect(preview.contains(#"fill="\#(colour)""#), "\(label): \(colour) is not in the preview's legend")
        }
        #expect(preview.contains(#"fill="\#(TimelinePalette.now)""#))
        #expect(legend["accepted share"] == css.firstMatch(of: #/\.s-accepted\{background:(#[0-9a-f]{6})\}/#).map { String($0.1) })
    }

    @Test("every colour used for text has a contrast of at least 4.5:1 on white")
    func textContrast() throws {
        func luminance(_ hex: String) throws -> Double {
            let value = try #require(Int(hex.dropFirst(), radix: 16))
            let channels = [value >> 16 & 0xff, value >> 8 & 0xff, value & 0xff].map { channel -> Double in
                let c = Double(channel) / 255
                return c <= 0.03928 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4)
            }
            return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
        }
        for colour in [TimelinePalette.text, TimelinePalette.muted, DashboardStyle.link, TimelinePalette.lateStroke, TimelinePalette.now] {
            let ratio = 1.05 / (try luminance(colour) + 0.05)
            #expect(ratio >= 4.5, "\(colour): \(ratio)")
        }
    }

    @Test("the live endpoint's refresh is shared: one database read per second at most, whoever polls")
    func liveCache() async throws {
        let cache = LiveCache()
        let builds = Mutex(0)
        let build: @Sendable (Int64) async throws -> String = { now in
            builds.withLock { $0 += 1 }
            return "\(now)"
        }
        #expect(try await cache.snapshot(now: 1_000, build) == "1000")
        #expect(try await cache.snapshot(now: 1_999, build) == "1000")
        #expect(try await cache.snapshot(now: 2_000, build) == "2000")
        #expect(try await cache.snapshot(now: 500, build) == "500")
        #expect(builds.withLock { $0 } == 3)
    }

    @Test("instants are UTC `YYYY-MM-DD HH:MM:SSZ`, as Foundation's ISO 8601 formatter writes them, also across leap days and before 1970")
    func instants() {
        #expect(HTMLText.instant(december) == "2026-12-01 00:00:00Z")
        #expect(HTMLText.instant(0) == "1970-01-01 00:00:00Z")
        #expect(HTMLText.instant(-1) == "1969-12-31 23:59:59Z")
        #expect(HTMLText.instant(951_782_400_999) == "2000-02-29 00:00:00Z")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withFullTime, .withSpaceBetweenDateAndTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var ms: Int64 = -2_208_988_800_000  // 1900-01-01
        while ms < 4_102_444_800_000 {  // 2100-01-01
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(ms / 1000)))
            #expect(HTMLText.instant(ms) == expected, "\(ms)")
            #expect(HTMLText.instant(ms + 999) == expected, "\(ms) + 999 ms")
            ms += 2_851_199_000  // 33 days less a second: every time of day and month comes by
        }
    }

    @Test("CSV fields: quoted when needed, formulas defused")
    func csv() {
        #expect(DashboardPages.csvField(nil) == "")
        #expect(DashboardPages.csvField("plain") == "plain")
        #expect(DashboardPages.csvField(#"a,"b""#) == #""a,""b""""#)
        #expect(DashboardPages.csvField("=HYPERLINK(1)") == "'=HYPERLINK(1)")
    }

    @Test("an audit cursor survives its text form; garbage is refused")
    func cursor() {
        let cursor = AuditCursor(attemptedAtMicros: 1_796_083_200_123_456, rowID: "(12,7)")
        #expect(AuditCursor(cursor.description) == cursor)
        #expect(AuditCursor("1.2") == nil && AuditCursor("x.1.2") == nil && AuditCursor("1.2.999999") == nil)
    }

    @Test("bearer tokens: constant-time comparison, and the start-up rule names the key, never the value")
    func authRule() throws {
        #expect(DashboardAuth.matches("0123456789abcdef", "0123456789abcdef"))
        #expect(!DashboardAuth.matches("0123456789abcdeF", "0123456789abcdef"))
        #expect(!DashboardAuth.matches("0123456789abcde", "0123456789abcdef"))
        #expect(!DashboardAuth.matches("", "0123456789abcdef"))
        #expect(!DashboardAuth.matches("0123456789abcdef0123456789abcdef", "0123456789abcdef"))

        var http = Configuration().http
        #expect(try DashboardAuth.token(http: http, environment: [:]) == nil)
        http.host = "0.0.0.0"
        let open = #expect(throws: CallWindowError.self) { try DashboardAuth.token(http: http, environment: [:]) }
        #expect(open?.message.contains("http.auth_token_env") == true)
        http.authTokenEnv = "CW_TEST_DASH_TOKEN"
        let unset = #expect(throws: CallWindowError.self) { try DashboardAuth.token(http: http, environment: [:]) }
        #expect(unset?.message.contains("CW_TEST_DASH_TOKEN") == true)
        let short = #expect(throws: CallWindowError.self) { try DashboardAuth.token(http: http, environment: ["CW_TEST_DASH_TOKEN": "tiny-secret"]) }
        #expect(short?.message.contains("tiny-secret") == false)
        #expect(try DashboardAuth.token(http: http, environment: ["CW_TEST_DASH_TOKEN": "a-long-enough-bearer-token"]) == "a-long-enough-bearer-token")
    }
}
