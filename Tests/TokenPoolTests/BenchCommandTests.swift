import Foundation
import Testing
import TestSupport

/// `callwindow bench sender`, the real binary (set CALLWINDOW_BINARY when building elsewhere
/// than .build). It uses the test database for its ledger (--database-url), so it starts no cluster.
@Suite struct BenchCommandTests {
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
        #expect((report["accepted"] as? Int ?? 0) > 300)
        #expect((report["utilisation"] as? Double ?? 0) > 0.8)
    }

    @Test func withoutLimitsTheCeilingIsNull() async throws {
        _ = try TestDatabase.configuration()
        let report = try await bench(["--tokens", "1", "--seconds", "1", "--no-limits"])
        #expect(Set(report.keys) == Self.names)
        #expect(report["ceiling_rps"] is NSNull)
        #expect(report["utilisation"] is NSNull)
        #expect((report["accepted"] as? Int ?? 0) > 0)
    }
}
