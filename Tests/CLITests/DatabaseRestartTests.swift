import Foundation
import Postgres
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon binary against a cluster of its own, restarted while a window is being pushed.
@Suite("callwindow run across a database restart (the real binaries, a cluster of its own)", .serialized, .timeLimit(.minutes(6)))
struct DatabaseRestartTests {
    @Test("the database restarts mid-push: the daemon keeps running, logs the outage once per part, and loses nothing")
    func restartMidPush() async throws {
        try await withPrivateCluster("dbrestart") { url, folder in
            let migrate = try await run(callwindowBinary, ["migrate", "--database-url", url])
            try #require(migrate.status == 0, "migrate failed: \(migrate.stderr)")

            let configuration = try PostgresConfiguration(url)
            let connection = try await PostgresConnection.connect(configuration)
            try await connection.execute(
                "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1::uuid, $2::uuid, 'Acme Deliveries', 'dynamic')",
                DaemonTests.client, DaemonTests.label)
            let campaign = try await DaemonTests.campaignDueNow(receivers: 1_000, lead: "39 seconds", on: connection)
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let config = try DaemonTests.configFile(
                port: sandbox.port, "tokens: {max: 4}\nscheduler: {poll_seconds: 1, claim_batch: 100}\nhttp: {port: 0}")
            let daemon = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: DaemonTests.environment(url))
            defer { daemon.signal(SIGKILL) }

            func accepted(_ connection: PostgresConnection) async throws -> Int {
                try await connection.query("SELECT accepted FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0].decode("accepted")
            }
            try await waitUntil(timeout: .seconds(60), "some records accepted (daemon stderr: \(daemon.stderr.suffix(1500)))") {
                try await accepted(connection) >= 300
            }
            await connection.close()
            let restarted = try await run(pgclusterScript, ["restart", folder.path], environment: ["PGCLUSTER_FAST": "1"])
            try #require(restarted.status == 0, "pgcluster restart failed: \(restarted.stderr)")
            try await closing(try await PostgresConnection.connect(configuration)) { reconnected throws in
                try await waitUntil(timeout: .seconds(120), "every record accepted after the restart (daemon stderr: \(daemon.stderr.suffix(3000)))") {
                    try await accepted(reconnected) == 2_000
                }
                #expect(daemon.isRunning, "the daemon survived the outage")

                daemon.signal(SIGTERM)
                let ended = await daemon.wait()
                #expect(ended.status == 0, "daemon stderr: \(ended.stderr.suffix(3000))")
                let records = sandbox.records.map { "\($0["caller"] ?? "")>\($0["receiver"] ?? "")" }
                #expect(Set(records).count == 2_000, "every record reached the API")
                let duplicates = records.count - Set(records).count
                print("database restart test: \(records.count) pushes for 2000 records, \(duplicates) duplicates")
                #expect(duplicates <= 100, "duplicates are bounded by one claimed batch")
                let audited = try await reconnected.query(
                    "SELECT count(DISTINCT delivery_id) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'accepted'", campaign)
                #expect(try audited[0].decode("n", as: Int.self) == 2_000, "every accepted record is in the audit trail")
                // Logged once per outage and part, not once per retry.
                let outageLines = ended.stderr.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" warning ") }
                #expect(outageLines.count <= 8, "outage log lines: \(outageLines.joined(separator: "\n"))")
            }
        }
    }

    @Test("the database is gone at shutdown: the results already received cannot be written, the daemon says how many and exits 1, and nothing is lost")
    func databaseGoneAtShutdown() async throws {
        try await withPrivateCluster("dbgone") { url, folder in
            let migrate = try await run(callwindowBinary, ["migrate", "--database-url", url])
            try #require(migrate.status == 0, "migrate failed: \(migrate.stderr)")
            let configuration = try PostgresConfiguration(url)
            let campaign = try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
                try await connection.execute(
                    "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1::uuid, $2::uuid, 'Acme Deliveries', 'dynamic')",
                    DaemonTests.client, DaemonTests.label)
                return try await DaemonTests.campaignDueNow(receivers: 1_000, lead: "39 seconds", on: connection)
            }
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            // One token (100 records/s): the 2,000 records take 20 s, so a batch is out when the database goes.
            let config = try DaemonTests.configFile(
                port: sandbox.port, "tokens: {max: 1}\nscheduler: {poll_seconds: 1, claim_batch: 500, grace_seconds: 2}\nhttp: {port: 0}")
            let daemon = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: DaemonTests.environment(url))
            defer { daemon.signal(SIGKILL) }
            try await waitUntil(timeout: .seconds(60), "records being pushed (daemon stderr: \(daemon.stderr.suffix(1500)))") {
                sandbox.records.count >= 200
            }
            let stopped = try await run(pgclusterScript, ["stop", folder.path], environment: ["PGCLUSTER_FAST": "1"])
            try #require(stopped.status == 0, "pgcluster stop failed: \(stopped.stderr)")
            daemon.signal(SIGTERM)
            let ended = await daemon.wait()
            #expect(ended.status == 1, "daemon stderr: \(ended.stderr.suffix(3000))")
            let unwritten = ended.stderr.split(separator: "\n").first { $0.contains("could not be written before shutdown") }
            #expect(unwritten != nil, "the daemon says how many results it could not write: \(ended.stderr.suffix(3000))")

            // Nothing is lost: once the database is back, every record is still there, the
            // unwritten ones in flight under leases that lapse (and are then pushed again).
            let restarted = try await run(pgclusterScript, ["start", folder.path], environment: ["PGCLUSTER_FAST": "1"])
            try #require(restarted.status == 0, "pgcluster start failed: \(restarted.stderr)")
            try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
                let progress = try await connection.query(
                    "SELECT records, pending + in_flight + accepted + rejected + expired + cancelled + suppressed AS states, in_flight FROM callwindow.campaign_progress WHERE campaign_id = $1",
                    campaign)[0]
                #expect(try progress.decode("records", as: Int.self) == 2_000)
                #expect(try progress.decode("states", as: Int.self) == 2_000)
                #expect(try progress.decode("in_flight", as: Int.self) > 0, "the records whose results were not written wait for their leases to lapse")
            }
        }
    }
}
