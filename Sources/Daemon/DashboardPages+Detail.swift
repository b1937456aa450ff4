import Foundation
import Planning
import Store

extension DashboardPages {
    /// A campaign's page; `actions` (nil without `http.actions`) are offered as buttons that lead
    /// to a confirmation page.
    static func campaign(_ c: CampaignProgress, windows: [WindowProgress], actions: [OperatorAction]? = nil, now: Int64) -> String {
        var html = "<p class=\"muted\"><a href=\"/\">Overview</a> › campaign #\(c.campaignID)</p>"
        html += "<h1>#\(c.campaignID) \(HTMLText.escape(c.name))</h1>"
        html += "<p>\(HTMLText.escape(c.status)) · \(c.windows) windows · \(c.records) records · next push "
        html += "\(c.nextPushAt.map { HTMLText.escape(HTMLText.relative($0 - now)) } ?? "—") · "
        html += "<a href=\"/audit?campaign=\(c.campaignID)\">audit trail</a></p>"
        if let actions, !actions.isEmpty {
            html += "<div class=\"actions\">" + actions.map {
                "<form method=\"get\" action=\"/campaigns/\(c.campaignID)/confirm/\($0.rawValue)\"><button type=\"submit\">\(HTMLText.escape($0.verb))…</button></form>"
            }.joined() + "</div>"
        }
        html += progressBar(c) + legendList()
        for problem in c.problems { html += "<p class=\"problem\">\(HTMLText.escape(problem))</p>" }
        html += "<h2>Timeline</h2>"
        if windows.isEmpty {
            html += #"<p class="empty">No windows stored yet: the planner stores them on its next cycle (is <code>callwindow run</code> running?).</p>"#
            return layout(title: c.name, now: now, html)
        }
        html += "<div class=\"scroll\">" + DashboardTimeline.svg(windows, now: now) + "</div>"
        html += "<h2>Windows</h2><div class=\"scroll\"><table><thead><tr><th>window</th><th>starts (UTC)</th><th>ends</th><th>push at</th><th>deadline</th><th>state</th><th>records</th><th>accepted</th><th>rejected</th><th>expired</th><th>cancelled</th><th>pending</th><th>late by</th></tr></thead><tbody>"
        for w in windows {
            html += "<tr><td><a href=\"/campaigns/\(c.campaignID)/windows/\(w.windowID)\">\(w.windowID)</a></td>"
            html += [w.startsAt, w.endsAt, w.pushAt, w.deadline].map { "<td>\(HTMLText.escape(HTMLText.instant($0)))</td>" }.joined()
            html += "<td>\(HTMLText.escape(w.state.rawValue))</td>"
            html += [w.records, w.accepted, w.rejected, w.expired, w.cancelled, w.pending + w.inFlight].map { "<td>\($0)</td>" }.joined()
            html += "<td>\(w.lateByMs > 0 ? "<span class=\"problem\">\(w.lateByMs / 1000) s</span>" : "—")</td></tr>\n"
        }
        html += "</tbody></table></div>"
        return layout(title: c.name, now: now, html)
    }

    /// The confirmation step of an action: a plain form that POSTs it with its check token.
    static func confirm(_ c: CampaignProgress, _ action: OperatorAction, token: String, now: Int64) -> String {
        var html = "<p class=\"muted\"><a href=\"/\">Overview</a> › <a href=\"/campaigns/\(c.campaignID)\">#\(c.campaignID) \(HTMLText.escape(c.name))</a></p>"
        html += "<h1>\(HTMLText.escape(action.verb)) campaign #\(c.campaignID) \(HTMLText.escape(c.name))?</h1>"
        html += "<p>It is \(HTMLText.escape(c.status)) now. \(HTMLText.escape(action.consequence))</p>"
        html += "<form class=\"actions\" method=\"post\" action=\"/campaigns/\(c.campaignID)/actions/\(action.rawValue)\">"
        html += "<input type=\"hidden\" name=\"csrf\" value=\"\(HTMLText.escape(token))\">"
        html += "<button type=\"submit\">\(HTMLText.escape(action.verb)) campaign #\(c.campaignID)</button> <a href=\"/campaigns/\(c.campaignID)\">Back, change nothing</a></form>"
        return layout(title: "\(action.verb) #\(c.campaignID)", now: now, html)
    }

    static func window(_ c: CampaignProgress, _ w: WindowProgress, queued: [DeliveryState: Int], audit: [AuditEntry],
                       errors: [ErrorGroup], now: Int64) -> String {
        var html = "<p class=\"muted\"><a href=\"/\">Overview</a> › <a href=\"/campaigns/\(c.campaignID)\">#\(c.campaignID) \(HTMLText.escape(c.name))</a> › window \(w.windowID)</p>"
        html += "<h1>Window \(w.windowID)</h1><p>\(HTMLText.escape(HTMLText.instant(w.startsAt))) → \(HTMLText.escape(HTMLText.instant(w.endsAt))) · push at \(HTMLText.escape(HTMLText.instant(w.pushAt))) · deadline \(HTMLText.escape(HTMLText.instant(w.deadline))) · \(HTMLText.escape(w.state.rawValue))</p>"
        html += "<h2>Records by state</h2><div class=\"scroll\"><table><thead><tr><th>state</th><th>records</th></tr></thead><tbody>"
        let totals: [(String, Int)] = [("accepted", w.accepted), ("rejected", w.rejected), ("expired", w.expired), ("cancelled", w.cancelled),
                                       ("suppressed", w.suppressed), ("pending", queued[.pending] ?? w.pending), ("in flight", queued[.inFlight] ?? w.inFlight)]
        for (label, count) in totals { html += "<tr><td>\(HTMLText.escape(label))</td><td>\(count)</td></tr>" }
        html += "<tr><td><strong>records</strong></td><td><strong>\(w.records)</strong></td></tr></tbody></table></div>"
        html += "<h2>Errors by reason</h2>"
        if errors.isEmpty {
            html += #"<p class="empty">No errors: every attempt of this window so far was accepted (or none was made yet).</p>"#
        } else {
            html += "<div class=\"scroll\"><table><thead><tr><th>outcome</th><th>HTTP</th><th>reason</th><th>rows</th></tr></thead><tbody>"
            for e in errors {
                html += "<tr><td>\(HTMLText.escape(e.outcome.rawValue))</td><td>\(e.httpStatus.map(String.init) ?? "—")</td><td class=\"name\">\(HTMLText.escape(e.reason ?? "—"))</td><td>\(e.count)</td></tr>"
            }
            html += "</tbody></table></div>"
        }
        html += "<h2>Last \(audit.count) audit rows</h2>" + auditTable(audit, empty: "No attempts yet: the window is pushed from its push time.")
        return layout(title: "Window \(w.windowID)", now: now, html)
    }

    static func auditTable(_ rows: [AuditEntry], empty: String) -> String {
        if rows.isEmpty { return "<p class=\"empty\">\(HTMLText.escape(empty))</p>" }
        var html = "<div class=\"scroll\"><table><thead><tr><th>attempted (UTC)</th><th>campaign</th><th>window</th><th>receiver</th><th>call reason</th><th>outcome</th><th>HTTP</th><th>latency ms</th><th>token</th><th>reason</th></tr></thead><tbody>"
        for r in rows {
            html += "<tr><td>\(HTMLText.escape(HTMLText.instant(r.attemptedAt)))</td><td><a href=\"/campaigns/\(r.campaignID)\">\(r.campaignID)</a></td>"
            html += "<td>\(r.windowID.map { "<a href=\"/campaigns/\(r.campaignID)/windows/\($0)\">\($0)</a>" } ?? "—")</td>"
            html += "<td>\(HTMLText.escape(r.receiver))</td><td class=\"name\">\(HTMLText.escape(r.callReason ?? "—"))</td><td>\(HTMLText.escape(r.outcome.rawValue))</td>"
            html += "<td>\(r.httpStatus.map(String.init) ?? "—")</td><td>\(r.latencyMs.map(String.init) ?? "—")</td>"
            html += "<td class=\"fingerprints\">\(HTMLText.escape(r.tokenFingerprint ?? "—"))</td><td class=\"name\">\(HTMLText.escape(r.reason ?? "—"))</td></tr>\n"
        }
        return html + "</tbody></table></div>"
    }

    /// The audit filter as URL query items (without the cursor), for links.
    static func query(_ filter: AuditFilter) -> [(String, String)] {
        var items: [(String, String)] = []
        if let id = filter.campaignID { items.append(("campaign", "\(id)")) }
        if let outcome = filter.outcome { items.append(("outcome", outcome.rawValue)) }
        if let receiver = filter.receiver { items.append(("receiver", receiver)) }
        if let from = filter.from { items.append(("from", "\(from)")) }
        if let until = filter.until { items.append(("until", "\(until)")) }
        return items
    }

    static func link(_ path: String, _ items: [(String, String)]) -> String {
        items.isEmpty ? path : path + "?" + items.map { "\(HTMLText.query($0.0))=\(HTMLText.query($0.1))" }.joined(separator: "&")
    }

    static func audit(_ page: AuditPage, filter: AuditFilter, limit: Int = 100, now: Int64) -> String {
        var html = "<h1>Audit trail</h1><form class=\"filters\" method=\"get\" action=\"/audit\">"
        html += "<label>campaign id<input name=\"campaign\" inputmode=\"numeric\" size=\"8\" value=\"\(filter.campaignID.map(String.init) ?? "")\"></label>"
        html += "<label>outcome<select name=\"outcome\"><option value=\"\">any</option>"
        for outcome in AuditOutcome.allCases {
            html += "<option\(filter.outcome == outcome ? " selected" : "")>\(HTMLText.escape(outcome.rawValue))</option>"
        }
        html += "</select></label><label>receiver<input name=\"receiver\" size=\"14\" value=\"\(HTMLText.escape(filter.receiver ?? ""))\"></label>"
        html += "<label>from (epoch ms)<input name=\"from\" inputmode=\"numeric\" size=\"14\" value=\"\(filter.from.map(String.init) ?? "")\"></label>"
        html += "<label>until (epoch ms)<input name=\"until\" inputmode=\"numeric\" size=\"14\" value=\"\(filter.until.map(String.init) ?? "")\"></label>"
        html += "<button type=\"submit\">Filter</button></form>"
        let items = query(filter)
        html += "<p><a href=\"\(HTMLText.escape(link("/audit.csv", items)))\">CSV of every matching row</a></p>"
        html += auditTable(page.entries, empty: "No audit rows match: they appear once records are pushed.")
        if let next = page.next {
            let size: [(String, String)] = limit == 100 ? [] : [("limit", "\(limit)")]
            html += "<p><a rel=\"next\" href=\"\(HTMLText.escape(link("/audit", items + size + [("after", next.description)])))\">Next page (older) →</a></p>"
        }
        return layout(title: "Audit trail", now: now, html)
    }

    /// One CSV field, quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-`
    /// or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
    static func csvField(_ text: String?) -> String {
        guard var value = text else { return "" }
        if let first = value.first, "=+-@".contains(first) { value = "'" + value }
        if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return value
    }

    static let csvHeader = "attempted_at,campaign_id,window_id,delivery_id,caller,receiver,call_reason,outcome,http_status,latency_ms,token_fingerprint,reason\r\n"

    static func csvRow(_ r: AuditEntry) -> String {
        [HTMLText.instant(r.attemptedAt), "\(r.campaignID)", r.windowID.map(String.init), r.deliveryID.map(String.init), r.caller, r.receiver,
         r.callReason, r.outcome.rawValue, r.httpStatus.map(String.init), r.latencyMs.map(String.init), r.tokenFingerprint, r.reason]
            .map(csvField).joined(separator: ",") + "\r\n"
    }
}
