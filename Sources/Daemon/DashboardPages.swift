import Foundation
import Planning
import Store

/// The dashboard's HTML, built from store results: pure functions of their inputs, every value
/// passed through `HTMLText.escape`.
enum DashboardPages {
    /// What the overview shows: one block per account, then one page of the campaigns.
    struct Overview: Sendable {
        var accounts: [AccountSummary]
        var campaigns: CampaignPage
        /// The page shown: campaigns with an id below this; nil for the first (newest) page.
        var before: Int64?

        init(accounts: [AccountSummary], campaigns: CampaignPage, before: Int64? = nil) {
            self.accounts = accounts
            self.campaigns = campaigns
            self.before = before
        }

        /// An overview of `campaigns` on one page.
        init(accounts: [AccountSummary], campaigns: [CampaignProgress]) {
            self.init(accounts: accounts, campaigns: CampaignPage(campaigns: campaigns, total: campaigns.count, next: nil))
        }
    }

    static func layout(title: String, now: Int64, live: Bool = false, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTMLText.escape(title)) · CallWindow</title>
        <link rel="stylesheet" href="/dashboard.css">
        </head>
        <body>
        <header><strong>CallWindow</strong><nav><a href="/">Overview</a><a href="/audit">Audit trail</a></nav>
        <span class="muted">as of <span id="live-at">\(HTMLText.escape(HTMLText.instant(now)))</span>\(live ? " · live" : "")</span></header>
        <main>
        \(body)
        </main>
        \(live ? #"<script src="/dashboard.js" defer></script>"# : "")
        </body>
        </html>

        """
    }

    /// The values the live endpoint refreshes, keyed as the pages' `data-live` attributes.
    static func liveValues(_ overview: Overview) -> [String: String] {
        var values: [String: String] = [:]
        for summary in overview.accounts {
            let a = "a-\(summary.clientAccountID.uuidString.lowercased())"
            values["\(a)-depth"] = "\(summary.queueDepth)"
            values["\(a)-tokens"] = "\(summary.tokens.count)"
            values["\(a)-mints"] = "\(summary.mintsLast30Minutes)"
            let minutes = summary.minutes
            values["\(a)-accepted"] = "\(minutes.reduce(0) { $0 + $1.accepted })"
            values["\(a)-429"] = "\(minutes.reduce(0) { $0 + $1.rateLimited })"
            values["\(a)-errors"] = "\(minutes.reduce(0) { $0 + $1.errors })"
        }
        for c in overview.campaigns.campaigns {
            let key = "c-\(c.campaignID)"
            values["\(key)-accepted"] = "\(c.accepted)"
            values["\(key)-rejected"] = "\(c.rejected)"
            values["\(key)-expired"] = "\(c.expired)"
            values["\(key)-cancelled"] = "\(c.cancelled)"
            values["\(key)-pending"] = "\(c.pending + c.inFlight)"
        }
        return values
    }

    static func overview(_ overview: Overview, now: Int64, requestsPerSecondPerToken: Double) -> String {
        let live = liveValues(overview)
        // Later pages are not refreshed by /live.json: their counters are plain text.
        func value(_ key: String, live isLive: Bool = true) -> String {
            let text = HTMLText.escape(live[key] ?? "0")
            return isLive ? #"<span data-live="\#(HTMLText.escape(key))">\#(text)</span>"# : text
        }
        var html = "<h1>Overview</h1>\n"
        if overview.accounts.isEmpty {
            html += #"<p class="empty">No client accounts configured: add one under <code>clients:</code> in the configuration file (see README).</p>"#
        }
        html += #"<section class="accounts">"#
        for s in overview.accounts {
            let a = "a-\(s.clientAccountID.uuidString.lowercased())"
            let lastMinute = s.minutes.dropLast().last?.accepted ?? 0
            let ceiling = Double(s.tokens.count) * requestsPerSecondPerToken
            html += """
            <article class="card"><h2>Account \(HTMLText.escape(s.clientAccountID.uuidString.lowercased()))</h2>
            <dl class="figures">
            <div><dt>queue depth</dt><dd>\(value("\(a)-depth"))</dd></div>
            <div><dt>tokens held</dt><dd>\(value("\(a)-tokens"))</dd></div>
            <div><dt>mints, last 30 min</dt><dd>\(value("\(a)-mints"))</dd></div>
            <div><dt>rate (last full min) / ceiling</dt><dd>\(HTMLText.escape(String(format: "%.1f", Double(lastMinute) / 60))) / \(HTMLText.escape(String(format: "%.0f", ceiling))) per s</dd></div>
            <div><dt>accepted, 10 min</dt><dd>\(value("\(a)-accepted"))</dd></div>
            <div><dt>429s, 10 min</dt><dd>\(value("\(a)-429"))</dd></div>
            <div><dt>errors, 10 min</dt><dd>\(value("\(a)-errors"))</dd></div>
            </dl>
            \(sparkline(s.minutes))
            <p class="fingerprints"><span class="muted">fingerprints:</span> \(s.tokens.isEmpty ? "none yet" : s.tokens.map { HTMLText.escape($0.fingerprint) }.joined(separator: " "))</p>
            </article>

            """
        }
        let page = overview.campaigns
        let firstPage = overview.before == nil
        html += "</section>\n<h2>Campaigns</h2>\n"
        let campaigns = page.campaigns
        if campaigns.isEmpty {
            html += legendList()
            html += firstPage ? #"<p class="empty">No campaigns yet — insert one with SQL, see README.</p>"#
                : #"<p class="empty">No older campaigns. <a href="/">Back to the newest</a>.</p>"#
            return layout(title: "Overview", now: now, live: true, html)
        }
        if page.total > campaigns.count || !firstPage {
            html += "<p class=\"muted\">\(page.total) campaigns, newest first, \(campaigns.count) on this page"
            html += firstPage ? ".</p>" : "; its counters are as of loading (the first page's are live).</p>"
        }
        html += legendList()
        html += #"<div class="scroll"><table><thead><tr><th>campaign</th><th>status</th><th>progress</th><th>next push</th><th>lateness</th><th>problems</th></tr></thead><tbody>"#
        for c in campaigns {
            html += "<tr><td class=\"name\"><a href=\"/campaigns/\(c.campaignID)\">#\(c.campaignID) \(HTMLText.escape(c.name))</a></td>"
            html += "<td>\(HTMLText.escape(c.status))</td><td>\(progressBar(c))<small>"
            html += DashboardStyle.segments.map { "\(value("c-\(c.campaignID)-\($0.key)", live: firstPage)) \($0.label)" }.joined(separator: " · ")
            html += "</small></td><td>\(c.nextPushAt.map { HTMLText.escape(HTMLText.relative($0 - now)) } ?? "—")</td>"
            html += "<td>\(c.maxLateByMs > 0 ? "<span class=\"problem\">\(HTMLText.escape(HTMLText.relative(c.maxLateByMs).replacingOccurrences(of: "in ", with: ""))) late</span>" : "on time")</td>"
            html += "<td>\(c.problems.isEmpty ? "—" : c.problems.map { "<span class=\"problem\">\(HTMLText.escape($0))</span>" }.joined(separator: "<br>"))</td></tr>\n"
        }
        html += "</tbody></table></div>"
        var links: [String] = []
        if !firstPage { links.append(#"<a href="/">← Newest campaigns</a>"#) }
        if let next = page.next { links.append(#"<a rel="next" href="/?before=\#(next)">Older campaigns →</a>"#) }
        if !links.isEmpty { html += "<p class=\"pages\">" + links.joined(separator: " · ") + "</p>" }
        return layout(title: "Overview", now: now, live: true, html)
    }

    static func legendList() -> String {
        "<ul class=\"legend\">" + DashboardStyle.segments.map { "<li><i class=\"s-\($0.key)\"></i>\(HTMLText.escape($0.label))</li>" }.joined() + "</ul>\n"
    }

    static func progressBar(_ c: CampaignProgress) -> String {
        let counts = ["accepted": c.accepted, "rejected": c.rejected, "expired": c.expired, "cancelled": c.cancelled,
                      "pending": c.pending + c.inFlight]
        let total = counts.values.reduce(0, +)
        var bar = #"<div class="bar" role="img" aria-label="progress">"#
        if total > 0 {
            for segment in DashboardStyle.segments {
                let share = Double(counts[segment.key] ?? 0) / Double(total) * 100
                if share > 0 { bar += #"<span class="s-\#(segment.key)" style="width:\#(String(format: "%.2f", share))%"></span>"# }
            }
        }
        return bar + "</div>"
    }

    static func sparkline(_ minutes: [AttemptMinute]) -> String {
        let peak = max(minutes.map { max($0.accepted, $0.rateLimited + $0.errors) }.max() ?? 0, 1)
        let step = 260.0 / Double(max(minutes.count - 1, 1))
        func y(_ n: Int) -> String { String(format: "%.1f", 34 - Double(n) / Double(peak) * 30) }
        let accepted = minutes.enumerated().map { "\(String(format: "%.1f", Double($0.offset) * step)),\(y($0.element.accepted))" }
        let failed = minutes.enumerated().map { "\(String(format: "%.1f", Double($0.offset) * step)),\(y($0.element.rateLimited + $0.element.errors))" }
        return """
        <svg class="spark" viewBox="0 0 260 36" preserveAspectRatio="none" role="img" aria-label="accepted (green) and 429s plus errors (red) per minute, last 10 minutes">
        <polyline fill="none" stroke="\(TimelinePalette.accepted)" stroke-width="2" points="\(accepted.joined(separator: " "))"/>
        <polyline fill="none" stroke="\(TimelinePalette.rejected)" stroke-width="1.5" points="\(failed.joined(separator: " "))"/>
        </svg>
        """
    }
}
