import Foundation
import Testing
@testable import Planning

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Two campaigns of one client account, worked by hand: at 12:00 on Mar 2, window 0 of campaign 7
/// (09:00-17:00 UTC) has started, so its 8,000 records (100 s at 80 records/s) go out at once and
/// are 3 h 5 min 100 s late; window 1 is pushed as late as possible, 08:53:20-08:55:00 on Mar 3.
func smallReport() -> PlanReport {
    let morning = campaign(id: 7, name: "Morning calls", from: utc(2026, 3, 2), to: utc(2026, 3, 4), daily: ("09:00", "17:00"))
    let cancelled = campaign(
        id: 8, name: #"Tom & Jerry <"sale">"#, from: utc(2026, 3, 2), to: utc(2026, 3, 3), status: .cancelled)
    return PlanReport.build(
        campaigns: [
            (morning, RecordCounts(callers: 2, receivers: 4000, records: 8000)),
            (cancelled, RecordCounts(
                callers: 1, receivers: 0, records: 0, invalidRecords: 0, problems: ["label 1111 is not a dynamic label"])),
        ],
        capacity: Capacity(tokens: 1, transport: .v1),
        now: utc(2026, 3, 2, 12))
}

@Suite("Plan report")
struct PlanReportTests {
    @Test func buildSchedulesAndCollectsProblems() throws {
        let report = smallReport()
        let morning = report.campaigns[0]
        #expect(morning.windows.map(\.state) == [.planned, .planned])
        #expect(morning.windows[0].pushAt == utc(2026, 3, 2, 12))
        #expect(morning.windows[0].lateByMs == utc(2026, 3, 2, 12) + 100_000 - utc(2026, 3, 2, 8, 55))
        #expect(morning.windows[1].pushAt == utc(2026, 3, 3, 8, 53, 20))
        #expect(morning.windows[1].pushDoneAt == utc(2026, 3, 3, 8, 55))
        #expect(morning.tokensNeeded == nil)  // window 0's deadline has passed
        #expect(morning.totalPushes == 16_000)
        #expect(morning.problems.count == 1)
        #expect(morning.problems[0].kind == .lateWindows)
        #expect(morning.problems[0].message.hasPrefix("1 of 2 windows cannot be pushed by their deadline at 80 records/s (worst: window 0, late by 3 h 6 min)"))

        let cancelled = report.campaigns[1]
        #expect(cancelled.windows.map(\.state) == [.cancelled])
        #expect(cancelled.windows[0].pushAt == nil && cancelled.windows[0].records == 0)
        #expect(cancelled.problems.map(\.message) == [
            "The campaign is cancelled, so none of its windows will be pushed.",
            "Label 1111 is not a dynamic label.",
            "The campaign has no receivers and no explicit pairs, so it has no records; add receivers (or pairs).",
        ])
    }

    @Test func moreProblems() {
        let now = utc(2026, 3, 10)
        let report = PlanReport.build(
            campaigns: [
                (campaign(id: 1, from: utc(2026, 3, 1), to: utc(2026, 3, 2)), RecordCounts(callers: 0, receivers: 5, records: 0)),
                (campaign(id: 2, from: utc(2026, 3, 11), to: utc(2026, 3, 12), zone: "Mars/Base"), RecordCounts(callers: 1, receivers: 1, records: 1)),
                (campaign(id: 3, from: utc(2026, 3, 11), to: utc(2026, 3, 12)),
                 RecordCounts(callers: 1, receivers: 3, records: 3, invalidRecords: 3, invalidReasons: ["receiver is not a phone number": 3])),
                (campaign(id: 4, from: utc(2026, 3, 11), to: utc(2026, 3, 12), status: .paused), RecordCounts(callers: 1, receivers: 1, records: 1)),
            ],
            capacity: Capacity(tokens: 1), now: now)
        #expect(report.campaigns[0].problems.map(\.message) == [
            "The campaign has no callers and no explicit pairs, so it has no records; add callers (or pairs).",
            "The campaign ended at 2026-03-02T00:00:00Z, before now (2026-03-10T00:00:00Z), so nothing will be pushed.",
        ])
        #expect(report.campaigns[0].windows.map(\.state) == [.expired])
        #expect(report.campaigns[1].problems.first?.kind == .unplannable)
        #expect(report.campaigns[1].problems.first?.message.hasPrefix("Time zone \"Mars/Base\" is not known") == true)
        #expect(report.campaigns[1].windows.isEmpty)
        #expect(report.campaigns[2].problems.map(\.kind) == [.allRecordsInvalid])
        #expect(report.campaigns[2].problems.map(\.message) == ["All 3 records are invalid (3 × receiver is not a phone number), so nothing will be pushed."])
        #expect(report.campaigns[2].tokensNeeded == 0)
        #expect(report.campaigns[3].problems.first?.kind == .paused)
        #expect(report.campaigns[3].problems.first?.message.hasPrefix("The campaign is paused") == true)
        #expect(report.campaigns[3].windows[0].pushAt == nil)
        #expect(report.campaigns[3].windows[0].records == 1)  // shown, not scheduled
    }

    @Test func campaignsOfOneAccountShareThePool() {
        // Two accounts, each with one window needing 100 s at the same deadline: each account has
        // its own pool, so both end at the deadline; within one account they would queue.
        let now = utc(2026, 3, 1)
        let counts = RecordCounts(callers: 1, receivers: 8000, records: 8000)
        let separate = PlanReport.build(
            campaigns: [
                (campaign(id: 1, account: accountA, from: utc(2026, 3, 2), to: utc(2026, 3, 3)), counts),
                (campaign(id: 2, account: accountB, from: utc(2026, 3, 2), to: utc(2026, 3, 3)), counts),
            ], capacity: Capacity(tokens: 1), now: now)
        #expect(separate.campaigns.map { $0.windows[0].pushDoneAt } == [utc(2026, 3, 1, 23, 55), utc(2026, 3, 1, 23, 55)])
        let shared = PlanReport.build(
            campaigns: [
                (campaign(id: 1, from: utc(2026, 3, 2), to: utc(2026, 3, 3)), counts),
                (campaign(id: 2, from: utc(2026, 3, 2), to: utc(2026, 3, 3), priority: 1), counts),
            ], capacity: Capacity(tokens: 1), now: now)
        #expect(shared.campaigns[1].windows[0].pushDoneAt == utc(2026, 3, 1, 23, 53, 20))  // higher priority first
        #expect(shared.campaigns[0].windows[0].pushDoneAt == utc(2026, 3, 1, 23, 55))
    }

    @Test func jsonHasExactlyTheDocumentedKeysAndValues() throws {
        let data = smallReport().jsonData()
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(root.keys) == ["now", "capacity", "campaigns"])
        #expect(root["now"] as? Int64 == utc(2026, 3, 2, 12))
        let capacity = try #require(root["capacity"] as? [String: Any])
        #expect(Set(capacity.keys) == ["tokens", "transport", "records_per_second", "utilisation"])
        #expect(capacity["tokens"] as? Int == 1)
        #expect(capacity["transport"] as? String == "v1")
        #expect(capacity["records_per_second"] as? Double == 80)

        let campaigns = try #require(root["campaigns"] as? [[String: Any]])
        #expect(campaigns.count == 2)
        let documented: Set<String> = ["id", "client_account_id", "name", "status", "problems", "invalid_records", "windows"]
        let added: Set<String> = [
            "time_zone", "starts_at", "ends_at", "callers", "receivers", "pairs", "records_per_window",
            "invalid_reasons", "tokens_needed",
        ]
        let morning = campaigns[0]
        #expect(Set(morning.keys) == documented.union(added))
        #expect(morning["id"] as? Int64 == 7)
        #expect(morning["client_account_id"] as? String == "0b0a5d2e-1c3f-4e2a-9b1d-6f1e2d3c4b5a")
        #expect(morning["name"] as? String == "Morning calls")
        #expect(morning["status"] as? String == "active")
        #expect(morning["invalid_records"] as? Int == 0)
        #expect((morning["problems"] as? [String])?.count == 1)
        #expect(morning["tokens_needed"] is NSNull)
        #expect(morning["records_per_window"] as? Int == 8000)

        let windows = try #require(morning["windows"] as? [[String: Any]])
        #expect(windows.count == 2)
        let keys: Set<String> = ["seq", "starts_at", "ends_at", "records", "push_at", "push_done_at", "deadline", "late_by_ms", "state"]
        #expect(windows.allSatisfy { Set($0.keys) == keys })
        let w1 = windows[1]
        #expect(w1["seq"] as? Int == 1)
        #expect(w1["starts_at"] as? Int64 == utc(2026, 3, 3, 9))
        #expect(w1["ends_at"] as? Int64 == utc(2026, 3, 3, 17))
        #expect(w1["records"] as? Int == 8000)
        #expect(w1["push_at"] as? Int64 == utc(2026, 3, 3, 8, 53, 20))
        #expect(w1["push_done_at"] as? Int64 == utc(2026, 3, 3, 8, 55))
        #expect(w1["deadline"] as? Int64 == utc(2026, 3, 3, 8, 55))
        #expect(w1["late_by_ms"] as? Int64 == 0)
        #expect(w1["state"] as? String == "planned")
        #expect(windows[0]["late_by_ms"] as? Int64 == 11_200_000)

        let cancelled = campaigns[1]
        #expect(cancelled["name"] as? String == #"Tom & Jerry <"sale">"#)
        let cw = try #require((cancelled["windows"] as? [[String: Any]])?.first)
        #expect(cw["state"] as? String == "cancelled")
        #expect(cw["push_at"] is NSNull && cw["push_done_at"] is NSNull)

        // Deterministic: same report, same bytes; keys sorted.
        #expect(smallReport().jsonData() == data)
        let compact = smallReport().json(prettyPrinted: false)
        #expect(compact.hasPrefix(#"{"campaigns":[{"callers":2,"client_account_id":"#))
    }

    @Test func textShowsLocalAndUTCTimes() {
        let c = campaign(
            id: 3, name: "Spring forward", from: utc(2026, 3, 7, 5), to: utc(2026, 3, 10, 4),
            zone: "America/New_York", daily: ("02:30", "05:00"))
        let report = PlanReport.build(
            campaigns: [(c, RecordCounts(callers: 3, receivers: 1000, records: 3000, invalidRecords: 2, invalidReasons: ["call_reason is shorter than 10 characters": 2]))],
            capacity: Capacity(tokens: 1), now: utc(2026, 3, 1))
        let text = report.text()
        #expect(text.contains("Sun 2026-03-08 03:30 → 05:00 -04:00"), "local window on the spring-forward day")
        #expect(text.contains("Sun 2026-03-08 07:30 → 09:00"), "UTC window on the spring-forward day")
        #expect(text.contains("Sat 2026-03-07 02:30 → 05:00 -05:00"))
        #expect(text.contains("2,998 valid records per window, 2 invalid"))
        #expect(text.contains("2 invalid: call_reason is shorter than 10 characters"))
        #expect(text.contains("03-08 07:24:22.525"))  // push start: 2,998 records at 80/s = 37.475 s before 07:25
        #expect(text.contains("Tokens     1 needed"))
        let lines = text.split(separator: "\n")
        let warnings = lines.firstIndex { $0.contains("Warnings") }
        let table = lines.firstIndex { $0.contains("local window (America/New_York)") }
        #expect(warnings != nil && table != nil && warnings! > table!, "warnings come last")
    }

    @Test func longTablesCanBeElided() {
        let c = campaign(from: utc(2026, 1, 1), to: utc(2026, 4, 1))
        let report = PlanReport.build(campaigns: [(c, RecordCounts(callers: 1, receivers: 1, records: 1))], capacity: Capacity(tokens: 1), now: utc(2025, 12, 1))
        let full = report.text()
        let short = report.text(maxRows: 10)
        #expect(full.split(separator: "\n").count > short.split(separator: "\n").count + 70)
        #expect(short.contains("… 80 more windows …"))
        #expect(short.contains("2026-03-31 00:00"))  // the last window is still shown

        // With some windows expired and one late, the table shows the late one and the next ones.
        let now = utc(2026, 2, 15, 12)
        let midway = PlanReport.build(campaigns: [(c, RecordCounts(callers: 1, receivers: 1, records: 1))], capacity: Capacity(tokens: 1), now: now)
        let rows = PlanReport.rowsToShow(midway.campaigns[0].windows, maxRows: 10)
        #expect(rows.count == 10)
        #expect(rows.first == 0 && rows.last == 89)
        #expect(rows.contains(45))  // Feb 15: under way, deadline passed, late
        #expect(rows.contains(46) && rows.contains(47))  // next to push
    }
}

@Suite("Plan report SVG")
struct PlanReportSVGTests {
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String: Int] = [:]
        var texts: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements[name, default: 0] += 1
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
    }

    static func parse(_ svg: String) throws -> Collector {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        #expect(ok, "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        return collector
    }

    /// A 90-day example worth looking at: one account, a Mon-Fri day campaign, an overnight one
    /// with a higher priority, and a cancelled one, 20 days in and just before a window's deadline.
    static func ninetyDayReport() -> PlanReport {
        let weekday = campaign(
            id: 12, name: #"Spring renewals <Q2> & "VIP""#, from: utc(2026, 3, 2, 5), to: utc(2026, 5, 31, 4),
            zone: "America/New_York", daily: ("09:00", "17:00"), weekdays: [1, 2, 3, 4, 5])
        let overnight = campaign(
            id: 13, name: "Night deliveries", from: utc(2026, 3, 15, 4), to: utc(2026, 4, 15, 4),
            zone: "America/New_York", daily: ("22:00", "06:00"), priority: 1)
        let cancelled = campaign(
            id: 14, name: "Old promo", from: utc(2026, 3, 20, 4), to: utc(2026, 4, 20, 4),
            zone: "America/New_York", daily: ("12:00", "14:00"), status: .cancelled)
        return PlanReport.build(
            campaigns: [
                (weekday, RecordCounts(callers: 3, receivers: 1_000_000, records: 3_000_000, invalidRecords: 120, invalidReasons: ["receiver is not a phone number": 120])),
                (overnight, RecordCounts(callers: 2, receivers: 100_000, records: 200_000)),
                (cancelled, RecordCounts(callers: 1, receivers: 5000, records: 5000)),
            ],
            capacity: Capacity(tokens: 19, transport: .v1),
            now: utc(2026, 3, 23, 12, 40))  // 08:40 EDT on a Monday: today's window cannot make it
    }

    @Test func ninetyDayTimelineIsWellFormed() throws {
        let report = Self.ninetyDayReport()
        #expect(report.campaigns[0].windows.contains { $0.lateByMs > 0 })
        let svg = report.svg()
        let parsed = try Self.parse(svg)
        #expect(parsed.elements["svg"] == 1)
        let bars = report.campaigns.reduce(0) { $0 + $1.windows.count }
        #expect((parsed.elements["rect"] ?? 0) > bars)  // a bar per window, pushes, legend
        #expect(parsed.texts.joined().contains(#"Spring renewals <Q2> & "VIP""#))  // escaped, read back
        #expect(parsed.texts.joined().contains("now · Mon Mar 23 08:40"))  // the now line, in local time
        #expect(parsed.texts.contains { $0.contains("Mon Mar 30") })  // weekly ticks on Mondays
        try svg.write(toFile: "/tmp/callwindow-preview-example.svg", atomically: true, encoding: .utf8)
        try report.text(maxRows: 12).write(toFile: "/tmp/callwindow-preview-example.txt", atomically: true, encoding: .utf8)
    }

    @Test func oneDayTimelineIsWellFormed() throws {
        let c = campaign(
            id: 5, name: "One day <&>\" \u{1} test", from: utc(2026, 6, 1, 3, 30), to: utc(2026, 6, 2, 3, 30),
            zone: "Asia/Kolkata", daily: ("09:00", "18:00"))
        let report = PlanReport.build(
            campaigns: [(c, RecordCounts(callers: 1, receivers: 500_000, records: 500_000))],
            capacity: Capacity(tokens: 2), now: utc(2026, 6, 1, 2))
        let svg = report.svg()
        let parsed = try Self.parse(svg)
        #expect(parsed.texts.joined().contains("One day <&>\""))
        #expect(parsed.texts.contains("10:00") || parsed.texts.contains("12:00"))  // hourly ticks
        try svg.write(toFile: "/tmp/callwindow-preview-1day.svg", atomically: true, encoding: .utf8)
    }

    @Test func emptyReportIsWellFormed() throws {
        let report = PlanReport(now: utc(2026, 1, 1), capacity: Capacity(tokens: 1), campaigns: [])
        _ = try Self.parse(report.svg())
        #expect(report.text().contains("No campaigns."))
    }
}
