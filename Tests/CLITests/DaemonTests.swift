import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Postgres
import Store
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The sandbox binary on a free port, with a record file.
struct RunningSandbox {
    let process: ChildProcess
    let port: Int
    let recordFile: String

    /// The sandbox of `config` (default: the demo's, `config/sandbox.yaml`).
    static func start(config: String? = nil) async throws -> RunningSandbox {
        let recordFile = FileManager.default.temporaryDirectory.appendingPathComponent("records-\(UUID().uuidString).jsonl").path
        let config = config ?? TestDatabase.packageRoot.appendingPathComponent("config/sandbox.yaml").path
        let process = try ChildProcess(callwindowBinary, ["sandbox", "--config", config, "--port", "0", "--record-file", recordFile])
        var port = 0
        try await waitUntil(timeout: .seconds(20), "the sandbox to listen") {
            guard let line = process.stdout.split(separator: "\n").first, line.hasPrefix("listening on http://") else { return false }
            port = Int(line.split(separator: ":").last ?? "") ?? 0
            return port > 0
        }
        return RunningSandbox(process: process, port: port, recordFile: recordFile)
    }

    var records: [[String: Any]] {
        ((try? String(contentsOfFile: recordFile, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

@Suite("callwindow run (the real binaries: daemon, sandbox, PostgreSQL)", .serialized, .timeLimit(.minutes(6)))
struct DaemonTests {
    static let client = "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"
    static let keyID = "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0"
    static let apiKey = "2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1"
    static let label = "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01"

    /// A fresh database migrated by the binary, holding the sandbox's dynamic label.
    static func database(_ name: String) async throws -> (url: String, connection: PostgresConnection) {
        let database = try await TestDatabase.fresh(name)
        let url = database.conninfoForTests
        let migrate = try await run(callwindowBinary, ["migrate", "--database-url", url])
        try #require(migrate.status == 0, "migrate failed: \(migrate.stderr)")
        let connection = try await PostgresConnection.connect(database)
        try await connection.execute(
            "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1::uuid, $2::uuid, 'Acme Deliveries', 'dynamic')",
            client, label)
        return (url, connection)
    }

    /// A campaign of 2 callers × `receivers` whose one window is due now (starts in 40 s, lead `lead`).
    static func campaignDueNow(receivers: Int, lead: String, on connection: PostgresConnection) async throws -> Int64 {
        let campaign: Int64 = try await connection.query(
            """
            INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, lead, call_reason)
            VALUES ($1::uuid, 'due now', $2::uuid, now() + interval '40 seconds', now() + interval '2 hours', $3::interval,
                    'Your parcel arrives today') RETURNING id
            """, client, label, lead)[0].decode("id")
        try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '4930000001'), ($1, '4930000002')", campaign)
        try await connection.execute(
            "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4915100000000 + g)::text FROM generate_series(1, $2::int4) g",
            campaign, Int32(receivers))
        return campaign
    }

    /// A configuration file for the sandbox on `port` plus `extra` YAML lines.
    static func configFile(port: Int, api extraAPI: String = "", _ extra: String = "") throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("callwindow-\(UUID().uuidString).yaml")
        try """
            api: {base_url: "http://127.0.0.1:\(port)"\(extraAPI)}
            clients: [{client_account_id: \(client), key_id_env: TEST_KEY_ID, api_key_env: TEST_API_KEY}]
            \(extra)
            """.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    static func environment(_ url: String) -> [String: String] {
        ["CALLWINDOW_DATABASE_URL": url, "TEST_KEY_ID": keyID, "TEST_API_KEY": apiKey,
         "CALLWINDOW_TOKEN_KEY": "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="]
    }

    @Test("a SIGTERM that arrives before the services run (the schema check waits on a lock) still stops the daemon gracefully: exit 0")
    func earlySigtermIsGraceful() async throws {
        try await closing(try await Self.database("early"), connection: { $0.1 }) { resource throws in
            let (url, connection) = resource
            let config = try Self.configFile(port: 1, "http: {port: 0}")
            // Hold the daemon at its schema check: its first statement waits for this lock (taken on
            // a connection of its own: inside a transaction, pg_stat_activity would not change).
            // pg_stat_activity is the whole cluster's: only this test's database counts, or another
            // test's wait on a lock sends the SIGTERM before the daemon has trapped it (exit 143).
            try await closing(try await PostgresConnection.connect(try PostgresConfiguration(url))) { locker throws in
                try await locker.execute("BEGIN")
                try await locker.execute("LOCK TABLE callwindow.windows IN ACCESS EXCLUSIVE MODE")
                let daemon = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: Self.environment(url))
                defer { daemon.signal(SIGKILL) }
                try await waitUntil(timeout: .seconds(60), "the daemon's schema check to wait for the lock (stderr: \(daemon.stderr.suffix(1000)))") {
                    try await connection.query(
                        """
                        SELECT count(*) AS n FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%callwindow.windows%'
                        """
                    )[0].decode("n", as: Int.self) == 1
                }
                daemon.signal(SIGTERM)
                try await locker.execute("COMMIT")
                let ended = await daemon.wait()
                #expect(ended.status == 0, "exit \(ended.status): \(ended.stderr.suffix(2000))")
                #expect(ended.stderr.contains("graceful shutdown requested"))
            }
        }
    }

    @Test("a window due now is pushed completely, once per record, and SIGTERM exits 0")
    func pushesAndDrains() async throws {
        try await closing(try await Self.database("run"), connection: { $0.1 }) { resource throws in
            let (url, connection) = resource
            let campaign = try await Self.campaignDueNow(receivers: 250, lead: "38 seconds", on: connection)
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let config = try Self.configFile(port: sandbox.port, api: ", transport: v1", "tokens: {max: 2}\nscheduler: {poll_seconds: 1}\nhttp: {port: 0}")
            let daemon = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: Self.environment(url))
            defer { daemon.signal(SIGKILL) }
            try await waitUntil(timeout: .seconds(60), "every record accepted (daemon stderr: \(daemon.stderr.suffix(2000)))") {
                try await connection.query("SELECT accepted FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
                    .decode("accepted", as: Int.self) == 500
            }
            // The operations endpoint: metrics, liveness, readiness.
            let line = try #require(daemon.stderr.split(separator: "\n").first { $0.contains("operations endpoint listening") })
            let base = try #require(line.split(separator: " ").first { $0.hasPrefix("url=") }).dropFirst(4)
            func get(_ path: String) async throws -> (Int, String) {
                let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: base + path)))
                return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
            }
            let metrics = try await get("/metrics")
            #expect(metrics.0 == 200)
            #expect(metrics.1.split(separator: "\n").contains { $0.hasPrefix("callwindow_records_total") && $0.contains("outcome=\"accepted\"") && $0.hasSuffix(" 500") },
                    "metrics: \(metrics.1.prefix(3000))")
            #expect(metrics.1.contains("callwindow_push_latency_seconds"))
            #expect(metrics.1.contains("callwindow_token_mints_total"), "mints are counted")
            #expect(try await get("/healthz").0 == 200)
            #expect(try await get("/readyz").0 == 200)

            daemon.signal(SIGTERM)
            let ended = await daemon.wait()
            #expect(ended.status == 0, "daemon stderr: \(ended.stderr.suffix(2000))")
            let records = sandbox.records
            #expect(records.count == 500)
            #expect(Set(records.map { "\($0["caller"] ?? "")>\($0["receiver"] ?? "")" }).count == 500)
            #expect(!ended.stderr.contains(Self.apiKey))
            let audit = try await connection.query("SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'accepted'", campaign)
            #expect(try audit[0].decode("n", as: Int.self) == 500)
            let mints = try await connection.query("SELECT count(*) AS n FROM callwindow.token_mints")
            #expect(try mints[0].decode("n", as: Int.self) <= 2, "daemon log: \(ended.stderr.suffix(6000))")
        }
    }

    @Test("missing credentials, a missing token key and a schema newer or older than the build are clear start-up errors")
    func startupErrors() async throws {
        let (url, connection) = try await Self.database("runerr")
        await connection.close()
        let configFile = FileManager.default.temporaryDirectory.appendingPathComponent("callwindow-\(UUID().uuidString).yaml")
        try "clients: [{client_account_id: \(Self.client), key_id_env: NOPE_KEY_ID, api_key_env: NOPE_API_KEY}]\n"
            .write(to: configFile, atomically: true, encoding: .utf8)
        let noKey = try await run(callwindowBinary, ["run", "--config", configFile.path, "--database-url", url],
                                  environment: ["CALLWINDOW_TOKEN_KEY": ""])
        #expect(noKey.status != 0)
        #expect(noKey.stderr.contains("CALLWINDOW_TOKEN_KEY"))
        let noCredentials = try await run(callwindowBinary, ["run", "--config", configFile.path, "--database-url", url],
                                          environment: ["CALLWINDOW_TOKEN_KEY": "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="])
        #expect(noCredentials.status != 0)
        #expect(noCredentials.stderr.contains("NOPE_KEY_ID"))
        let badConfig = try await run(callwindowBinary, ["run", "--config", "/nonexistent.yaml"])
        #expect(badConfig.status != 0)
        #expect(badConfig.stderr.contains("/nonexistent.yaml"))

        // A schema a newer CallWindow migrated (a migration this build does not know) is refused
        // before anything runs, and so is one older than this build needs.
        let key = ["CALLWINDOW_TOKEN_KEY": "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=", "NOPE_KEY_ID": UUID().uuidString, "NOPE_API_KEY": "k"]
        try await closing(try await PostgresConnection.connect(try PostgresConfiguration(url))) { connection throws in
            try await connection.execute("INSERT INTO callwindow.schema_migrations (version, name, checksum) VALUES (999, '999_future.sql', 'x')")
            let newer = try await run(callwindowBinary, ["run", "--config", configFile.path, "--database-url", url], environment: key)
            #expect(newer.status != 0)
            #expect(newer.stderr.contains("at migration 999, newer than this build knows"), "\(newer.stderr)")
            try await connection.execute("DELETE FROM callwindow.schema_migrations WHERE version >= 9")
            let older = try await run(callwindowBinary, ["run", "--config", configFile.path, "--database-url", url], environment: key)
            #expect(older.status != 0)
            #expect(older.stderr.contains("older than this build needs"), "\(older.stderr)")
        }
    }

    @Test("labels sync fetches every label through the API and upserts them; labels gone from the API are removed")
    func labelsSync() async throws {
        try await closing(try await Self.database("labels"), connection: { $0.1 }) { resource throws in
            let (url, connection) = resource
            try await connection.execute(
                "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1::uuid, gen_random_uuid(), 'Gone', 'dynamic')", Self.client)
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let configFile = try Self.configFile(port: sandbox.port)
            let environment = Self.environment(url)
            for _ in 0..<2 {
                let sync = try await run(callwindowBinary, ["labels", "sync", "--config", configFile], environment: environment)
                #expect(sync.status == 0, "stderr: \(sync.stderr)")
                #expect(sync.stdout.contains("2 labels (1 dynamic) synced"))
            }
            let labels = try await connection.query("SELECT name, label_type FROM callwindow.labels ORDER BY name")
                .map { "\(try $0.decode("name", as: String.self))/\(try $0.decode("label_type", as: String.self))" }
            #expect(labels == ["Acme/static", "Acme Deliveries/dynamic"])
            // The second sync reused the stored token instead of minting another.
            let mints = try await connection.query("SELECT count(*) AS n FROM callwindow.token_mints")[0].decode("n", as: Int.self)
            #expect(mints == 1)
        }
    }

    @Test("kill -9 mid-push and restart: every record reaches the API, duplicates stay within what was in flight, no new mint")
    func killAndRestart() async throws {
        try await closing(try await Self.database("kill"), connection: { $0.1 }) { resource throws in
            let (url, connection) = resource
            let campaign = try await Self.campaignDueNow(receivers: 1500, lead: "39 seconds", on: connection)
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let config = try Self.configFile(
                port: sandbox.port, api: ", connect_timeout_ms: 500, request_timeout_ms: 1000",
                "tokens: {max: 4, lease_seconds: 3}\nscheduler: {poll_seconds: 1, lease_seconds: 5, claim_batch: 200}\nhttp: {port: 0}")
            let environment = Self.environment(url)
            func accepted() async throws -> Int {
                try await connection.query("SELECT accepted FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0].decode("accepted")
            }
            let first = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: environment)
            // Killed on every path: a failed wait must not leave the daemon running.
            defer { first.signal(SIGKILL) }
            try await waitUntil(timeout: .seconds(60), "some records accepted (first daemon's stderr: \(first.stderr.suffix(1500)))") {
                try await accepted() >= 400
            }
            first.signal(SIGKILL)
            _ = await first.wait()
            let mintsBefore = try await connection.query("SELECT count(*) AS n FROM callwindow.token_mints")[0].decode("n", as: Int.self)
            let second = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: environment)
            defer { second.signal(SIGKILL) }
            try await waitUntil(timeout: .seconds(120), "every record accepted after the restart (stderr: \(second.stderr.suffix(1500)))") {
                try await accepted() == 3000
            }
            second.signal(SIGTERM)
            let ended = await second.wait()
            #expect(ended.status == 0)
            let records = sandbox.records.map { "\($0["caller"] ?? "")>\($0["receiver"] ?? "")" }
            #expect(Set(records).count == 3000, "every record reached the API at least once")
            let duplicates = records.count - Set(records).count
            print("kill -9 test: \(records.count) pushes for 3000 records, \(duplicates) duplicates, \(mintsBefore) mints before the restart")
            // In flight at the kill: up to scheduler.concurrent_batches (2) claimed batches of 200, and
            // up to four times as many while those are down to records in retry back-off.
            #expect(duplicates <= 200 * 2 * 4, "duplicates are bounded by what was claimed and not yet recorded")
            let mintsAfter = try await connection.query("SELECT count(*) AS n FROM callwindow.token_mints")[0].decode("n", as: Int.self)
            #expect(mintsAfter == mintsBefore, "the restart waited for the dead instance's token leases instead of minting")
            let audited = try await connection.query(
                "SELECT count(DISTINCT delivery_id) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'accepted'", campaign)
            #expect(try audited[0].decode("n", as: Int.self) == 3000)
        }
    }

    @Test("two daemons on one database: every record once, zero 429s, no token above its rate or shared, tokens.max for the account")
    func twoDaemons() async throws {
        try await closing(try await Self.database("two"), connection: { $0.1 }) { resource throws in
            let (url, connection) = resource
            let campaign = try await Self.campaignDueNow(receivers: 1500, lead: "39 seconds", on: connection)
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let config = try Self.configFile(
                port: sandbox.port, api: ", connect_timeout_ms: 500, request_timeout_ms: 1000",
                "tokens: {max: 3}\nscheduler: {poll_seconds: 1, claim_batch: 200}\nhttp: {port: 0}")
            let first = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: Self.environment(url))
            let second = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: Self.environment(url))
            defer {
                first.signal(SIGKILL)
                second.signal(SIGKILL)
            }
            try await waitUntil(timeout: .seconds(120), "every record accepted") {
                try await connection.query("SELECT accepted FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
                    .decode("accepted", as: Int.self) == 3000
            }
            first.signal(SIGTERM)
            second.signal(SIGTERM)
            let firstEnded = await first.wait()
            #expect(firstEnded.status == 0, "first daemon: \(firstEnded.stderr.suffix(3000))")
            let secondEnded = await second.wait()
            #expect(secondEnded.status == 0, "second daemon: \(secondEnded.stderr.suffix(3000))")
            let records = sandbox.records
            #expect(Set(records.map { "\($0["caller"] ?? "")>\($0["receiver"] ?? "")" }).count == 3000)
            // Pushing is at least once: a record reaches the API twice only when an earlier attempt's
            // answer was lost (a timeout or reset, audited without an HTTP status). Two daemons never
            // claim the same record, so every other duplicate is a defect.
            let lostAnswers = try await connection.query(
                "SELECT count(*) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND http_status IS NULL", campaign)[0]
                .decode("n", as: Int.self)
            #expect(records.count - 3000 <= lostAnswers, "\(records.count) pushes for 3000 records, \(lostAnswers) attempts without an answer")
            let (data, _) = try await URLSession.shared.data(from: try #require(URL(string: "http://127.0.0.1:\(sandbox.port)/sandbox/stats")))
            let stats = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect((stats["rate_limited"] as? NSNumber)?.intValue == 0)
            let tokens = try #require(stats["tokens"] as? [String: [String: Any]])
            for (fingerprint, token) in tokens {
                #expect(((token["peak_1s"] as? NSNumber)?.intValue ?? 0) <= 100, "token \(fingerprint) stayed within 100 requests/s")
            }
            // Each token was used by one instance only.
            let users = try await connection.query(
                "SELECT token_fingerprint, count(DISTINCT instance) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 GROUP BY 1", campaign)
            #expect(try users.allSatisfy { try $0.decode("n", as: Int.self) == 1 })
            // tokens.max is the account's, whichever daemon holds them: the 3,000 records justify all
            // three, and no more are minted for the second daemon (which claims nothing while it
            // holds none, so it never sits on records it cannot send).
            let used = Set(try users.map { try $0.decode("token_fingerprint", as: String.self) })
            #expect(used.count >= 2 && used.count <= 3, "\(used.count) tokens pushed")
            let mints = try await connection.query("SELECT count(*) AS n FROM callwindow.token_mints")[0].decode("n", as: Int.self)
            #expect(mints <= 3, "the account minted at most tokens.max across both daemons")
        }
    }
}
