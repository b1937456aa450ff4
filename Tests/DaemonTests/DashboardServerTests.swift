@testable import Daemon
import Foundation
import Logging
import Postgres
import Prometheus
import Store
import TestSupport
import Testing

@Suite("The dashboard served by the operations server, against a real database", .timeLimit(.minutes(5)))
struct DashboardServerTests {
    @Test("every page renders the seeded campaigns, windows and audit rows, escaped, with campaign_progress's numbers")
    func pages() async throws {
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            let progress = try await ProgressStore().campaigns([fixture.evil, fixture.plain], on: connection)
            try await withDashboardServer(accounts: [fixture.client]) { get in
                let overview = try await get("/", nil)
                #expect(overview.status == 200)
                #expect(overview.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
                #expect(!overview.body.contains("<script>alert(1)"))
                #expect(overview.body.contains("Winter sale"))
                #expect(overview.body.contains("a1b2c3d4e5f6"))
                for c in progress {
                    for (key, value) in [("accepted", c.accepted), ("rejected", c.rejected), ("pending", c.pending + c.inFlight)] {
                        #expect(overview.body.contains(#"<span data-live="c-\#(c.campaignID)-\#(key)">\#(value)</span>"#), "\(c.campaignID) \(key)")
                    }
                }
                #expect(progress.map(\.accepted).reduce(0, +) == 4 && progress.map(\.rejected).reduce(0, +) == 1)

                let campaign = try await get("/campaigns/\(fixture.evil)", nil)
                #expect(campaign.status == 200)
                #expect(campaign.body.contains(#"<svg class="timeline""#))
                #expect(campaign.body.contains("now · "))
                #expect(!campaign.body.contains("<script>alert(1)"))
                for window in fixture.windows[fixture.evil]! {
                    #expect(campaign.body.contains("/campaigns/\(fixture.evil)/windows/\(window)"))
                }

                let first = fixture.windows[fixture.evil]![0]
                let window = try await get("/campaigns/\(fixture.evil)/windows/\(first)", nil)
                #expect(window.status == 200)
                #expect(window.body.contains("&lt;img src=x onerror=alert(2)&gt; &amp; &quot;more&quot;"))
                #expect(!window.body.contains("<img src=x"))
                #expect(window.body.contains("Call &quot;Jerry&quot; &lt;b&gt;it&#39;s here"))
                #expect(window.body.contains("rate_limited") && window.body.contains("<td>429</td>"))

                let audit = try await get("/audit?campaign=\(fixture.evil)&outcome=accepted", nil)
                #expect(audit.status == 200)
                #expect(audit.body.components(separatedBy: "<td>accepted</td>").count - 1 == progress.first { $0.campaignID == fixture.evil }!.accepted)
                // Without a campaign or a start the trail shows the last 24 hours, and says so in the form.
                let recent = try await get("/audit?outcome=rejected", nil)
                #expect(recent.status == 200)
                #expect(recent.body.contains(#"name="from" inputmode="numeric" size="14" value="\#(readAt - 86_400_000)""#))
                let csv = try await get("/audit.csv?campaign=\(fixture.evil)", nil)
                #expect(csv.status == 200)
                let evilRows = try await connection.query("SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1", fixture.evil)[0].decode("n", as: Int.self)
                #expect(evilRows == 5)
                #expect(csv.body.split(separator: "\r\n").count == 1 + evilRows)
                #expect(csv.body.contains(#""Call ""Jerry"" <b>it's here""#))

                let live = try await get("/live.json", nil)
                #expect(live.status == 200)
                let values = try #require(try JSONSerialization.jsonObject(with: Data(live.body.utf8)) as? [String: Any])["values"] as? [String: String]
                #expect(values?["c-\(fixture.evil)-accepted"] == "\(progress.first { $0.campaignID == fixture.evil }!.accepted)")
                #expect(try await get("/dashboard.js", nil).body.contains("setInterval(refresh, 2000)"))
                #expect(try await get("/campaigns/999999999", nil).status == 404)

                // No secret in any page: not the token's ciphertext (raw, hex or base64), not the database URL.
                let url = ProcessInfo.processInfo.environment["CALLWINDOW_TEST_DATABASE_URL"] ?? "postgres://"
                let secrets = [ciphertextMarker, Data(ciphertextMarker.utf8).map { String(format: "%02x", $0) }.joined(),
                               Data(ciphertextMarker.utf8).base64EncodedString(), url]
                for page in [overview, campaign, window, audit, recent, csv, live] {
                    for secret in secrets { #expect(!page.body.contains(secret)) }
                }
            }
        }
    }

    @Test("the overview's campaigns page by keyset on the id, newest first, each once, only the configured accounts'")
    func campaignPaging() async throws {
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            let other = try await DashboardFixture.make(connection)
            let store = DashboardStore()
            let first = try await store.campaigns(of: [fixture.client], limit: 1, on: connection)
            #expect(first.campaigns.map(\.campaignID) == [max(fixture.evil, fixture.plain)])
            #expect(first.total == 2 && first.next == max(fixture.evil, fixture.plain))
            let second = try await store.campaigns(of: [fixture.client], before: first.next, limit: 1, on: connection)
            #expect(second.campaigns.map(\.campaignID) == [min(fixture.evil, fixture.plain)])
            #expect(second.next == nil)
            let progress = try await ProgressStore().campaigns([fixture.evil, fixture.plain], on: connection)
            #expect((first.campaigns + second.campaigns).sorted { $0.campaignID < $1.campaignID } == progress)
            let both = try await store.campaigns(of: [fixture.client, other.client], on: connection)
            #expect(both.campaigns.map(\.campaignID) == [other.plain, other.evil, fixture.plain, fixture.evil].sorted(by: >))
            #expect(both.total == 4 && both.next == nil)
            #expect(try await store.campaigns(of: [UUID()], on: connection) == CampaignPage(campaigns: [], total: 0, next: nil))
        }
    }

    @Test("the audit trail pages by keyset: every row exactly once, newest first, also across equal instants")
    func keysetPaging() async throws {
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            // More rows, several at the very same instant, so the tiebreak matters.
            let delivery = try await connection.query(
                "SELECT id FROM callwindow.deliveries WHERE campaign_id = $1 ORDER BY id LIMIT 1", fixture.plain)[0].decode("id", as: Int64.self)
            for i in 0..<23 {
                try await connection.execute(
                    """
                    INSERT INTO callwindow.push_attempts (attempted_at, client_account_id, campaign_id, window_id, delivery_id, caller, receiver,
                      starts_at, ends_at, label_id, transport, token_fingerprint, http_status, outcome, reason, latency_ms, instance)
                    SELECT callwindow.at_ms($2), client_account_id, campaign_id, window_id, id, caller, receiver, starts_at, ends_at, label_id,
                           'v1', 'a1b2c3d4e5f6', 503, 'transient', 'server error', 40, 'dash-test'
                    FROM callwindow.deliveries WHERE id = $1
                    """, delivery, december + hour + 200_000 + Int64(i / 4) * 1_000)
            }
            let store = DashboardStore()
            let filter = AuditFilter(campaignID: fixture.plain)
            let all = try await store.audit(filter, after: nil, limit: 1_000, on: connection)
            #expect(all.next == nil)
            let stored = try await connection.query("SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1", fixture.plain)[0].decode("n", as: Int.self)
            #expect(stored == 23 + 4)
            #expect(all.entries.count == stored)
            var seen: [AuditEntry] = []
            var cursor: AuditCursor?
            var pages = 0
            repeat {
                let page = try await store.audit(filter, after: cursor.flatMap { AuditCursor($0.description) }, limit: 4, on: connection)
                #expect(page.entries.count <= 4)
                seen += page.entries
                cursor = page.next
                pages += 1
            } while cursor != nil && pages < 100
            #expect(pages == 7)
            #expect(seen == all.entries)
            #expect(seen.map(\.attemptedAt) == seen.map(\.attemptedAt).sorted(by: >))
            let transient = try await store.audit(AuditFilter(campaignID: fixture.plain, outcome: .transient, from: december + hour + 201_000,
                                                              until: december + hour + 203_000), after: nil, on: connection)
            #expect(transient.entries.count == 8)
            let receiver = try await store.audit(AuditFilter(receiver: seen[0].receiver, from: december, until: december + 3 * hour), after: nil, on: connection)
            #expect(receiver.entries.allSatisfy { $0.receiver == seen[0].receiver } && receiver.entries.count >= 23)

            // The page's "next" link leads to the rest, and every row is shown once across the pages.
            try await withDashboardServer(accounts: [fixture.client]) { get in
                var path: String? = "/audit?campaign=\(fixture.plain)&limit=10"
                var rows = 0
                var visited = 0
                while let next = path, visited < 10 {
                    let page = try await get(next, nil)
                    #expect(page.status == 200)
                    rows += page.body.components(separatedBy: "<td class=\"fingerprints\">").count - 1
                    path = page.body.firstMatch(of: #/rel="next" href="([^"]+)"/#).map { String($0.1).replacingOccurrences(of: "&amp;", with: "&") }
                    visited += 1
                }
                #expect(rows == 27 && visited == 3)
            }
        }
    }

    @Test("with a token every page, the live endpoint and /metrics need it, as bearer token or basic-auth password; /healthz and /readyz stay open")
    func bearerToken() async throws {
        let token = "test-bearer-token-\(UUID().uuidString)"
        func basic(_ credentials: String) -> String { "Basic " + Data(credentials.utf8).base64EncodedString() }
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            try await withDashboardServer(accounts: [fixture.client], authToken: token) { get in
                for path in ["/", "/campaigns/\(fixture.evil)", "/audit", "/audit.csv", "/live.json", "/metrics", "/dashboard.css"] {
                    let without = try await get(path, nil)
                    #expect(without.status == 401, "\(path)")
                    #expect(!without.body.contains(token))
                    // A browser asks for basic auth only when the 401 offers it.
                    #expect(without.headers.contains { $0.0.lowercased() == "www-authenticate" && $0.1.hasPrefix("Basic realm=") }, "\(path)")
                    #expect(try await get(path, "wrong-\(token)").status == 401, "\(path)")
                    #expect(try await get(path, token).status == 200, "\(path)")
                    // What a browser sends: any user name, the token as password (the live script's requests too).
                    #expect(try await get(path, basic("operator:\(token)")).status == 200, "\(path)")
                    #expect(try await get(path, basic("\(token):wrong")).status == 401, "\(path)")
                    #expect(try await get(path, basic(token)).status == 401, "\(path)")
                }
                #expect(DashboardAuth.presented(basic("a:b:c")) == "b:c")
                #expect(DashboardAuth.presented("Basic not-base64!") == nil)
                #expect(try await get("/dashboard.js", token).body.contains("fetch(location.origin + \"/live.json\""))
                #expect(try await get("/healthz", nil).status == 200)
                #expect(try await get("/readyz", nil).status == 200)
            }
        }
    }

    @Test("on 0.0.0.0 without a bearer token the server refuses to start")
    func refusesOpenHost() async throws {
        try await closing(try await TestDatabase.pool(maxConnections: 1)) { pool in
            let server = OperationsServer(
                host: "0.0.0.0", port: 0, registry: PrometheusCollectorRegistry(), database: pool, plannerLastCycleAt: { 0 },
                plannerStaleAfterMs: 60_000, now: { 0 }, dashboard: nil, authToken: nil, logger: Logger(label: "test.http"))
            let error = await #expect(throws: CallWindowError.self) { try await server.run() }
            #expect(error?.message.contains("http.auth_token_env") == true)
        }
    }
}
