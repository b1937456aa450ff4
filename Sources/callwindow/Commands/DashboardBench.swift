import ArgumentParser
import Benchmarks
import Daemon
import Foundation
import Logging

/// `callwindow bench dashboard`: every dashboard page's server-side time on a large dataset.
struct DashboardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Generate 1,000 campaigns × 30 windows and 10 million audit rows, then time each dashboard page (median of warm requests).",
        discussion: """
            Starts a private PostgreSQL cluster (fsync off: this measures reads) unless --database-url \
            is given, migrates it, generates the dataset with set-based SQL (generate_series; the 10 \
            million audit rows take minutes) across the audit's monthly partitions of the two months \
            before this one and this one, runs the dashboard on a free loopback port and requests \
            each page: two warm-up requests, then --requests timed ones. The time is the server's own \
            (its Server-Timing header: from the request to the response's headers), not the client's.
            """
    )

    @Option(help: "Campaigns generated.")
    var campaigns: Int = 1_000

    @Option(name: .customLong("windows"), help: "Stored windows per campaign.")
    var windows: Int = 30

    @Option(name: .customLong("audit-rows"), help: "Audit rows generated.")
    var auditRows: Int64 = 10_000_000

    @Option(help: "Timed requests per page (the median is reported).")
    var requests: Int = 7

    @Option(name: .customLong("database-url"), help: "Generate into this database instead of a private cluster.")
    var databaseURL: String?

    @Flag(name: .customLong("reuse-dataset"),
          help: "With --database-url: time the pages on the dataset an earlier run generated there, as of the instant it was generated, instead of generating another.")
    var reuseDataset = false

    @Flag(help: "Print one JSON object (page → median ms) on the last line.")
    var json = false

    func validate() throws {
        guard campaigns >= 1 && campaigns <= 100_000 else { throw ValidationError("--campaigns must be between 1 and 100000") }
        guard windows >= 1 && windows <= 366 else { throw ValidationError("--windows must be between 1 and 366") }
        guard auditRows >= 1 && auditRows <= 100_000_000 else { throw ValidationError("--audit-rows must be between 1 and 100000000") }
        guard requests >= 1 && requests <= 1_000 else { throw ValidationError("--requests must be between 1 and 1000") }
        guard !reuseDataset || databaseURL != nil else { throw ValidationError("--reuse-dataset needs --database-url (a private cluster starts empty)") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: false)
            handler.logLevel = .warning
            return handler
        }
        var bench = DashboardBenchmark()
        (bench.campaigns, bench.windowsPerCampaign, bench.auditRows, bench.requests, bench.databaseURL, bench.reuseDataset) =
            (campaigns, windows, auditRows, requests, databaseURL, reuseDataset)
        let report: DashboardBenchmark.Report
        do {
            report = try await bench.run()
        } catch {
            throw fail(error)
        }
        print("dataset: \(report.campaigns) campaigns, \(report.windows) windows, \(report.auditRows) audit rows in \(report.partitions) partitions (\(report.generationSeconds.map { "generated in \(Int($0)) s" } ?? "reused"))")
        print("server-side time per page, median of \(requests) warm requests (min–max):")
        for page in report.pages {
            let name = page.name.padding(toLength: 40, withPad: " ", startingAt: 0)
            print(name + String(format: " %8.2f ms  (%.2f–%.2f)  ", page.medianMs, page.timingsMs.first ?? 0, page.timingsMs.last ?? 0) + page.path)
        }
        if json {
            let pages = report.pages.map { String(format: "\"%@\": %.3f", $0.name as NSString, $0.medianMs) }.joined(separator: ", ")
            print("{\"audit_rows\": \(report.auditRows), \"partitions\": \(report.partitions), \"median_ms\": {\(pages)}}")
        }
    }
}
