import Foundation
import Postgres
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `callwindow bench sender`, the real binary (set CALLWINDOW_BINARY when building elsewhere
/// than .build). It uses the test database for its ledger (--database-url), so it starts no cluster.
@Suite(.timeLimit(.minutes(6))) struct BenchCommandTests {
    static let names: Set<String> = [
        "tokens", "transport", "ceiling_rps", "achieved_rps", "utilisation", "accepted", "rate_limited",
        "errors", "p50_ms", "p99_ms", "cpu_seconds", "peak_rss_mb",
    ]

    func bench(_ arguments: [String]) async throws -> [String: Any] {
        let url = ProcessInfo.processInfo.environment["CALLWINDOW_TEST_DATABASE_URL"] ?? ""
        let result = try await run(
            callwindowBinary, ["bench", "sender"] + arguments + ["--json", "--database-url", url],
            environment: ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        return try #require(object)
    }

    @Test func theJSONLineHasExactlyTheDocumentedNames() async throws {
        _ = try TestDatabase.configuration()
        let report = try await bench(["--tokens", "2", "--seconds", "2"])
        #expect(Set(report.keys) == Self.names)
        #expect(report["tokens"] as? Int == 2)
        #expect(report["transport"] as? String == "v1")
        #expect(report["ceiling_rps"] as? Double == 200)
        #expect(report["rate_limited"] as? Int == 0)
        // How close to the ceiling it gets is the benchmark's figure, not this test's: a loaded
        // machine measures low. Records went through, and none was refused for the rate.
        #expect((report["accepted"] as? Int ?? 0) > 0)
        #expect((report["utilisation"] as? Double ?? 0) > 0)
    }

    @Test func withoutLimitsTheCeilingIsNull() async throws {
        _ = try TestDatabase.configuration()
        // Three seconds, not one: on a machine loaded by parallel builds a one-second window once
        // closed before the first answer came back (0 accepted).
        let report = try await bench(["--tokens", "1", "--seconds", "3", "--no-limits"])
        #expect(Set(report.keys) == Self.names)
        #expect(report["ceiling_rps"] is NSNull)
        #expect(report["utilisation"] is NSNull)
        #expect((report["accepted"] as? Int ?? 0) > 0)
    }
}

/// `callwindow bench pipeline`, the real binary, on a fresh database of its own.
@Suite(.timeLimit(.minutes(6))) struct PipelineBenchCommandTests {
    @Test func everyRecordIsAcceptedAndTheJSONLineHasTheSenderNamesPlusThePipelines() async throws {
        let database = try await TestDatabase.fresh("pipe")
        let result = try await run(
            callwindowBinary,
            ["bench", "pipeline", "--records", "600", "--tokens", "2", "--json", "--database-url", database.conninfoForTests],
            // No token key: the bench generates one of its own for the run.
            environment: ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path, "CALLWINDOW_TOKEN_KEY": ""]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let report = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let pipelineNames: Set<String> = [
            "records", "seconds", "durable", "first_push_ms", "materialised_ms", "late_records", "max_lateness_ms",
            "database_share", "postgres_cpu_seconds", "claim_batch", "concurrent_batches",
            "sandbox_cpu_seconds", "daemon_us_per_record", "postgres_us_per_record", "sandbox_us_per_record",
            "postgres_insert_cpu_seconds", "postgres_engine_us_per_record",
        ]
        #expect(Set(report.keys) == BenchCommandTests.names.union(pipelineNames))
        #expect(report["records"] as? Int == 600)
        #expect(report["accepted"] as? Int == 600, "every record accepted, as the audit trail shows")
        #expect(report["rate_limited"] as? Int == 0)
        #expect(report["ceiling_rps"] as? Double == 200)
        // Each token may send 100 in any second: 600 records on 2 tokens need more than 2 s.
        #expect((report["seconds"] as? Double ?? 0) >= 1.9)
        #expect(report["postgres_cpu_seconds"] is NSNull, "not a private cluster")
        #expect(report["sandbox_us_per_record"] is NSNull, "the sandbox ran in the bench's process")
        #expect((report["daemon_us_per_record"] as? Double ?? 0) > 0, "the process's CPU per accepted record")
        #expect(result.stdout.contains("first push"))
    }

    @Test("with --api-url, a second run on the same database without CALLWINDOW_TOKEN_KEY says at once that it cannot read the tokens the first one stored")
    func tokensOfAnEarlierRunUnderAGeneratedKeyAreNamed() async throws {
        let database = try await TestDatabase.fresh("pipekey")
        let sandbox = try await RunningSandbox.start()
        defer { sandbox.process.signal(SIGKILL) }
        // No token key: the bench generates one of its own for the run.
        let environment = ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path, "CALLWINDOW_TOKEN_KEY": ""]
        let arguments = ["bench", "pipeline", "--records", "200", "--tokens", "2", "--api-url", "http://127.0.0.1:\(sandbox.port)",
                         "--database-url", database.conninfoForTests]
        let first = try await run(callwindowBinary, arguments, environment: environment)
        #expect(first.status == 0, "\(first.stderr.suffix(2000))")
        #expect(first.stdout.contains("accepted      200"), "\(first.stdout)")
        #expect(first.stderr.contains("CALLWINDOW_TOKEN_KEY is not set: the tokens this run mints are stored under a key of its own"))

        // The first run's tokens are sealed under a key that ended with it. Without the check, the
        // pool only warns that it cannot open them, and the run pushes nothing until its timeout.
        let again = try await run(callwindowBinary, arguments, environment: environment)
        #expect(again.status == 1, "\(again.stderr.suffix(2000))")
        #expect(again.stderr.contains("the database holds 2 unexpired token(s) of client account 6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"),
                "\(again.stderr.suffix(2000))")
        #expect(again.stderr.contains("CALLWINDOW_TOKEN_KEY is not set: set it to the key they were stored under"))
        #expect(!again.stdout.contains("first push"), "no report: the run stopped before pushing")
    }

    @Test func badOptionsAreRefusedWithTheirName() async throws {
        let result = try await run(callwindowBinary, ["bench", "pipeline", "--tokens", "40"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--tokens"))
    }
}

/// `callwindow bench dashboard`, the real binary, on a small dataset in a fresh database.
@Suite(.timeLimit(.minutes(4))) struct DashboardBenchCommandTests {
    @Test func everyPageIsTimedByTheServerOnTheGeneratedDataset() async throws {
        let database = try await TestDatabase.fresh("dashbench")
        func bench(_ extra: [String]) async throws -> (stdout: String, medians: [String: Double]) {
            let result = try await run(
                callwindowBinary,
                ["bench", "dashboard", "--campaigns", "60", "--windows", "5", "--audit-rows", "20000", "--requests", "2", "--json",
                 "--database-url", database.conninfoForTests] + extra,
                environment: ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path]
            )
            #expect(result.status == 0, "\(result.stderr)")
            let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
            let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
            return (result.stdout, try #require(object["median_ms"] as? [String: Double]))
        }
        let generated = try await bench([])
        #expect(generated.stdout.contains("dataset: 60 campaigns, 300 windows, 20000 audit rows in 3 partitions (generated in"), "\(generated.stdout)")
        // 60 campaigns are more than the overview's page of 50, so it has a second page too.
        let pages: Set<String> = [
            "overview", "overview, page 2 (keyset)", "campaign", "window", "audit, last 24 h", "audit, last 24 h, page 2 (keyset)",
            "audit, one campaign", "audit, campaign + outcome + 1 week", "audit, outcome rejected, 24 h", "audit, one receiver, 24 h",
            "audit, one receiver, 3 months", "live.json (shared refresh rebuilt)",
        ]
        #expect(Set(generated.medians.keys) == pages)
        #expect(generated.medians.values.allSatisfy { $0 > 0 })
        // The rows really are in the database, across three monthly partitions (20,000 rows over at most 92 days
        // leave more than 100 in the last 24 hours, so the audit trail has a second page).
        func counts() async throws -> (rows: Int, partitions: Int, campaigns: Int) {
            let connection = try await PostgresConnection.connect(database)
            let rows = try await connection.query(
                "SELECT count(*) AS n, count(DISTINCT tableoid) AS parts, count(DISTINCT campaign_id) AS campaigns FROM callwindow.push_attempts")[0]
            await connection.close()
            return (try rows.decode("n"), try rows.decode("parts"), try rows.decode("campaigns"))
        }
        #expect(try await counts() == (20000, 3, 60))

        // --reuse-dataset times the same pages on the same rows, as of when they were generated, and adds none.
        let reused = try await bench(["--reuse-dataset"])
        #expect(reused.stdout.contains("dataset: 60 campaigns, 300 windows, 20000 audit rows in 3 partitions (reused)"), "\(reused.stdout)")
        #expect(Set(reused.medians.keys) == pages)
        #expect(try await counts() == (20000, 3, 60))
    }
}
