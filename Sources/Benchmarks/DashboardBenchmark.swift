import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Daemon
import Logging
import Planning
import Postgres
import Processes
import Prometheus
import ServiceLifecycle
import Store
import Synchronization

/// `callwindow bench dashboard`: the dashboard's pages on a large dataset — by default 1,000
/// campaigns of 30 windows each and 10 million audit rows across 3 monthly partitions, generated
/// with set-based SQL — each timed by the server itself (`Server-Timing`), median of warm requests.
public struct DashboardBenchmark: Sendable {
    /// Campaigns generated.
    public var campaigns = 1_000
    /// Stored windows per campaign.
    public var windowsPerCampaign = 30
    /// Audit rows generated, spread over the two months before the current one and the current one.
    public var auditRows: Int64 = 10_000_000
    /// Timed requests per page (after two warm-up requests).
    public var requests = 7
    /// A database to generate into instead of a private cluster.
    public var databaseURL: String?
    /// Time the pages on the dataset an earlier run generated into `databaseURL`, as of the
    /// instant it was generated (its newest audit row), instead of generating another.
    public var reuseDataset = false

    /// The defaults of `callwindow bench dashboard`.
    public init() {}

    /// One page's timings.
    public struct Page: Sendable {
        /// What the page shows.
        public var name: String
        /// Its path and query.
        public var path: String
        /// Server-side milliseconds of each timed request, sorted.
        public var timingsMs: [Double]
        /// The median.
        public var medianMs: Double { timingsMs[timingsMs.count / 2] }
    }

    /// The measured figures.
    public struct Report: Sendable {
        /// Every page, in the order measured.
        public var pages: [Page]
        /// Rows in the audit table and the partitions holding them.
        public var auditRows: Int64, partitions: Int
        /// Campaigns and windows generated.
        public var campaigns: Int, windows: Int
        /// Seconds the generation took (campaigns, windows, audit rows); nil when an earlier
        /// run's dataset was reused.
        public var generationSeconds: Double?
    }

    /// Generates the dataset and times the pages: on a private cluster (fsync off, it is a
    /// read benchmark) unless `databaseURL`, which then gets the dataset added.
    public func run() async throws -> Report {
        if databaseURL == nil { progress("starting a private PostgreSQL cluster") }
        return try await withBenchDatabase(url: databaseURL, label: "dashboard", fast: true) { database, _ in
            try await measure(database)
        }
    }

    private func measure(_ database: PostgresConfiguration) async throws -> Report {
        try await migrateBenchDatabase(database)
        let pool = PostgresPool(configuration: database, maxConnections: 4)
        do {
            let report = try await generateAndTime(pool)
            await pool.close()
            return report
        } catch {
            await pool.close()
            throw error
        }
    }

    private func generateAndTime(_ pool: PostgresPool) async throws -> Report {
        let system = SystemClock()
        if reuseDataset {
            guard let dataset = try await BenchStore.existingDashboardDataset(on: pool) else {
                throw BenchmarkError("--reuse-dataset: the database holds no dataset of an earlier bench dashboard run")
            }
            progress("reusing the dataset of \(dataset.campaigns) campaigns generated at \(dataset.generatedAt) ms; the pages are served as of then")
            let offset = dataset.generatedAt - system.now()
            return try await time(pool, account: dataset.clientAccountID, campaigns: dataset.campaigns, windows: dataset.windows,
                                  now: { system.now() + offset }, generationSeconds: nil)
        }
        let account = UUID(), label = UUID()
        let clock = system
        let now = clock.now()
        let started = ContinuousClock.now
        try await BenchStore.ensureLabel(clientAccountID: account, labelID: label, on: pool)
        progress("inserting \(campaigns) campaigns of \(windowsPerCampaign) windows")
        let windows = try await BenchStore.insertDashboardCampaigns(
            clientAccountID: account, labelID: label, campaigns: campaigns, windowsPerCampaign: windowsPerCampaign, now: now, on: pool)
        // From the start of the month two months back until now: three monthly partitions.
        let from = Self.auditStart(now: now)
        let chunk: Int64 = 1_000_000
        var first: Int64 = 0
        while first < auditRows {
            let count = min(chunk, auditRows - first)
            try await BenchStore.insertDashboardAudit(clientAccountID: account, labelID: label, first: first, count: count,
                                                      total: auditRows, from: from, until: now, on: pool)
            first += count
            progress("audit rows: \(first) of \(auditRows)")
        }
        let generation = ContinuousClock.now - started
        progress("generated in \(generation.components.seconds) s; timing the pages")
        return try await time(pool, account: account, campaigns: campaigns, windows: windows, now: { clock.now() },
                              generationSeconds: Double(generation.components.seconds))
    }

    /// The start of the month two months before `now`'s (epoch ms, UTC): where the generated
    /// audit rows begin.
    private static func auditStart(now: Int64) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let month = calendar.dateInterval(of: .month, for: Date(timeIntervalSince1970: Double(now) / 1_000))!.start
        return Int64(calendar.date(byAdding: .month, value: -2, to: month)!.timeIntervalSince1970 * 1_000)
    }

    private func time(_ pool: PostgresPool, account: UUID, campaigns: Int, windows: Int, now clock: @escaping @Sendable () -> Int64,
                      generationSeconds: Double?) async throws -> Report {
        let sample = try await BenchStore.dashboardSample(clientAccountID: account, on: pool)
        let now = clock()
        let from = Self.auditStart(now: now)

        let pages: [(String, String)] = [
            ("overview", "/"),
            ("campaign", "/campaigns/\(sample.campaignID)"),
            ("window", "/campaigns/\(sample.campaignID)/windows/\(sample.windowID)"),
            ("audit, last 24 h", "/audit"),
            ("audit, one campaign", "/audit?campaign=\(sample.campaignID)"),
            ("audit, campaign + outcome + 1 week", "/audit?campaign=\(sample.campaignID)&outcome=rejected&from=\(now - 7 * 86_400_000)&until=\(now)"),
            ("audit, outcome rejected, 24 h", "/audit?outcome=rejected"),
            ("audit, one receiver, 24 h", "/audit?receiver=\(sample.receiver)"),
            ("audit, one receiver, 3 months", "/audit?receiver=\(sample.receiver)&from=\(from)"),
        ]
        let timer = PageTimer(pages: pages, requests: requests)
        let server = OperationsServer(
            host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry(), database: pool, plannerLastCycleAt: clock,
            plannerStaleAfterMs: 60_000, now: clock,
            dashboard: Dashboard(database: pool, accounts: [account], requestsPerSecondPerToken: 100, now: clock),
            onListening: { bound in timer.port.withLock { $0 = bound } }, logger: Logger(label: "callwindow.bench"))
        let services: [any Service] = [server, timer]
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            logger: Logger(label: "callwindow.bench")))
        try await group.run()
        guard let timed = timer.result.withLock({ $0 }) else { throw BenchmarkError("the pages were not timed") }
        return Report(pages: try timed.get(), auditRows: sample.auditRows, partitions: sample.partitions, campaigns: campaigns,
                      windows: windows, generationSeconds: generationSeconds)
    }
}

/// Requests each page over loopback HTTP once the server listens — two warm-up requests, then
/// `requests` timed ones (the server's own `Server-Timing`), plus the second pages of the
/// overview and the audit trail (their keyset links) and `/live.json` (a second apart, so its shared refresh is rebuilt) — and
/// then returns, which ends the group.
final class PageTimer: Service, Sendable {
    let pages: [(String, String)]
    let requests: Int
    let port = Mutex(0)
    let result = Mutex<Result<[DashboardBenchmark.Page], any Error>?>(nil)

    init(pages: [(String, String)], requests: Int) {
        self.pages = pages
        self.requests = requests
    }

    func run() async throws {
        let outcome: Result<[DashboardBenchmark.Page], any Error>
        do {
            outcome = .success(try await measure())
        } catch {
            outcome = .failure(error)
        }
        result.withLock { $0 = outcome }
    }

    private func measure() async throws -> [DashboardBenchmark.Page] {
        var waited = 0
        while port.withLock({ $0 }) == 0 {
            guard waited < 300 else { throw BenchmarkError("the dashboard did not listen within 30 s") }
            try await Task.sleep(for: .milliseconds(100))
            waited += 1
        }
        let base = "http://127.0.0.1:\(port.withLock { $0 })"
        var measured: [DashboardBenchmark.Page] = []
        for (name, path) in pages {
            measured.append(try await time(name, path, base: base))
            progress(String(format: "%@: median %.1f ms", name, measured.last!.medianMs))
            if path == "/audit" || path == "/", let next = try await Self.get(base + path).body.firstMatch(of: #/rel="next" href="([^"]+)"/#) {
                let link = String(next.1).replacingOccurrences(of: "&amp;", with: "&")
                measured.append(try await time("\(name), page 2 (keyset)", link, base: base))
            }
        }
        measured.append(try await time("live.json (shared refresh rebuilt)", "/live.json", base: base, spacing: .milliseconds(1_050)))
        return measured
    }

    private func time(_ name: String, _ path: String, base: String, spacing: Duration = .zero) async throws -> DashboardBenchmark.Page {
        var timings: [Double] = []
        for index in 0..<(requests + 2) {
            if spacing > .zero { try await Task.sleep(for: spacing) }
            let answer = try await Self.get(base + path)
            guard answer.status == 200 else { throw BenchmarkError("\(path) answered \(answer.status)") }
            guard let timing = answer.serverMs else { throw BenchmarkError("\(path) sent no Server-Timing") }
            if index >= 2 { timings.append(timing) }
        }
        return DashboardBenchmark.Page(name: name, path: path, timingsMs: timings.sorted())
    }

    private static func get(_ url: String) async throws -> (status: Int, body: String, serverMs: Double?) {
        guard let address = URL(string: url) else { throw BenchmarkError("bad URL \(url)") }
        var request = URLRequest(url: address)
        request.timeoutInterval = 60
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        let timing = http?.value(forHTTPHeaderField: "Server-Timing")?.firstMatch(of: #/dur=([0-9.]+)/#).flatMap { Double($0.1) }
        return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), timing)
    }
}
