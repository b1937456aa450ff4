import AsyncHTTPClient
@testable import Daemon
import Foundation
import NIOHTTP1
import Postgres
import Store
import TestSupport
import Testing

@Suite("The dashboard's pause, resume and cancel (http.actions), against a real database", .timeLimit(.minutes(3)))
struct DashboardActionTests {
    static func status(_ campaign: Int64, on connection: PostgresConnection) async throws -> String {
        try await connection.query("SELECT status FROM callwindow.campaigns WHERE id = $1", campaign)[0].decode("status")
    }

    /// The check token of the confirmation page of `action` on `campaign`.
    static func csrf(_ base: String, _ campaign: Int64, _ action: String) async throws -> String {
        let page = try await send(base + "/campaigns/\(campaign)/confirm/\(action)")
        #expect(page.status == 200)
        #expect(page.body.contains(#"<form class="actions" method="post" action="/campaigns/\#(campaign)/actions/\#(action)">"#))
        return try #require(page.body.firstMatch(of: #/name="csrf" value="([0-9a-f]{64})"/#).map { String($0.1) })
    }

    @Test("without http.actions: no buttons, no confirmation page, and a POST changes nothing")
    func absentWithoutTheFlag() async throws {
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            try await withDashboard(accounts: [fixture.client]) { base in
                let page = try await send(base + "/campaigns/\(fixture.plain)")
                #expect(page.status == 200)
                #expect(!page.body.contains("/confirm/") && !page.body.contains("<button"))
                #expect(try await send(base + "/campaigns/\(fixture.plain)/confirm/pause").status == 404)
                let post = try await send(base + "/campaigns/\(fixture.plain)/actions/pause", method: .POST,
                                          headers: ["Origin": base, "Content-Type": "application/x-www-form-urlencoded"], body: "csrf=x")
                #expect(post.status == 404)
                #expect(try await Self.status(fixture.plain, on: connection) == "active")
            }
        }
    }

    @Test("with http.actions: buttons lead to a confirmation; a POST without a valid check token or from elsewhere is refused (403) and changes nothing; pause, resume and cancel work; cancelled stays cancelled")
    func actions() async throws {
        try await withMigratedDatabase { connection in
            let fixture = try await DashboardFixture.make(connection)
            try await withDashboard(accounts: [fixture.client], actions: true) { base in
                let id = fixture.plain
                let page = try await send(base + "/campaigns/\(id)")
                #expect(page.body.contains(#"<form method="get" action="/campaigns/\#(id)/confirm/pause"><button type="submit">Pause…</button></form>"#))
                #expect(page.body.contains("/confirm/cancel") && !page.body.contains("/confirm/resume"))
                let token = try await Self.csrf(base, id, "pause")
                let form = ["Origin": base, "Content-Type": "application/x-www-form-urlencoded"]
                func post(_ action: String, _ headers: [String: String], _ body: String) async throws -> Answer {
                    try await send(base + "/campaigns/\(id)/actions/\(action)", method: .POST, headers: headers, body: body)
                }
                // Refused: no token, a wrong one, another action's or campaign's, no Origin or Referer, a foreign Origin.
                let other = try await Self.csrf(base, fixture.evil, "pause")
                let cancelToken = try await Self.csrf(base, id, "cancel")
                for (headers, body) in [(form, ""), (form, "csrf="), (form, "csrf=\(String(repeating: "0", count: 64))"), (form, "csrf=\(other)"),
                                        (["Content-Type": "application/x-www-form-urlencoded"], "csrf=\(token)"),
                                        (["Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"], "csrf=\(token)")] {
                    let refused = try await post("pause", headers, body)
                    #expect(refused.status == 403, "\(headers) \(body)")
                    #expect(refused.body.contains("Nothing was changed"))
                    #expect(try await Self.status(id, on: connection) == "active")
                }
                #expect(try await post("cancel", form, "csrf=\(token)").status == 403)
                #expect(try await Self.status(id, on: connection) == "active")

                // Accepted: pause (Origin), then resume (Referer only); each answers 303 to the campaign page.
                let paused = try await post("pause", form, "csrf=\(token)")
                #expect(paused.status == 303)
                #expect(paused.headers.contains { $0.0.lowercased() == "location" && $0.1 == "/campaigns/\(id)" })
                #expect(try await Self.status(id, on: connection) == "paused")
                #expect(try await send(base + "/campaigns/\(id)").body.contains("/confirm/resume"))
                let resume = try await Self.csrf(base, id, "resume")
                let resumed = try await post("resume", ["Referer": base + "/campaigns/\(id)/confirm/resume", "Content-Type": "application/x-www-form-urlencoded"],
                                             "csrf=\(resume)")
                #expect(resumed.status == 303)
                #expect(try await Self.status(id, on: connection) == "active")
                #expect(try await post("cancel", form, "csrf=\(cancelToken)").status == 303)
                #expect(try await Self.status(id, on: connection) == "cancelled")
                // Cancelled is final: no buttons, no confirmation, and the database refuses a resume.
                #expect(!(try await send(base + "/campaigns/\(id)").body.contains("<button")))
                #expect(try await send(base + "/campaigns/\(id)/confirm/resume").status == 409)
                let again = try await post("resume", form, "csrf=\(resume)")
                #expect(again.status == 409)
                #expect(again.body.contains("cancelling is final"))
                #expect(try await Self.status(id, on: connection) == "cancelled")
                // The hostile name is escaped on the confirmation page too.
                let evil = try await send(base + "/campaigns/\(fixture.evil)/confirm/pause")
                #expect(evil.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !evil.body.contains("<script>alert(1)"))
            }
        }
    }
}
