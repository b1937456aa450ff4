import Foundation
import Postgres
import Testing
import TestSupport

/// `callwindow bench accounts`, the real binary, on a fresh database of its own: three accounts
/// of twenty records each. It checks what the bench does and reports, never how fast.
@Suite(.timeLimit(.minutes(6))) struct AccountsBenchCommandTests {
    @Test func everyAccountsWindowIsPushedAndReportedWithItsCosts() async throws {
        let database = try await TestDatabase.fresh("accounts")
        let result = try await run(
            callwindowBinary,
            ["bench", "accounts", "--accounts", "3", "--records-per-account", "20", "--json", "--database-url", database.conninfoForTests],
            environment: ["CALLWINDOW_SQL_DIR": TestDatabase.sqlDirectory.path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let report = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(Set(report.keys) == [
            "accounts", "records_per_account", "tokens_per_account", "transport", "no_limits", "engine_rate", "utilisation", "durable",
            "pool_size", "max_in_flight", "api_connections", "claim_batch", "concurrent_batches", "deadline_ms", "needed_rps", "busy_rps", "achieved_rps", "fits", "completion_ms", "first_push_ms", "spread_ms",
            "finished_accounts", "on_time_accounts", "accepted", "rate_limited", "errors", "late_records", "seconds", "transactions",
            "transactions_per_record", "cpu_seconds", "cpu_us_per_record", "postgres_cpu_seconds", "postgres_us_per_record",
            "peak_rss_mb", "per_account",
        ])
        #expect(report["accounts"] as? Int == 3)
        #expect(report["accepted"] as? Int == 60, "every record of every account accepted, as the audit trail shows")
        #expect(report["finished_accounts"] as? Int == 3)
        #expect(report["rate_limited"] as? Int == 0)
        #expect(report["postgres_cpu_seconds"] is NSNull, "not a private cluster")
        // The daemon's transactions were counted (claims and result writes at least).
        #expect((report["transactions"] as? Int ?? 0) > 0)
        let perAccount = try #require(report["per_account"] as? [[String: Any]])
        #expect(perAccount.count == 3)
        #expect(Set(perAccount.compactMap { $0["client_account_id"] as? String }).count == 3)
        for account in perAccount {
            #expect(account["accepted"] as? Int == 20)
            let first = try #require(account["first_push_ms"] as? Int)
            let done = try #require(account["completion_ms"] as? Int)
            #expect(done >= first)
        }
        // The distribution is of those completions, and the spread is its range.
        let completion = try #require(report["completion_ms"] as? [String: Int])
        let completions = perAccount.compactMap { $0["completion_ms"] as? Int }
        #expect(completion["min"] == completions.min() && completion["max"] == completions.max())
        #expect(report["spread_ms"] as? Int == (completions.max() ?? 0) - (completions.min() ?? 0))
        #expect(result.stdout.contains("sum of work"))
        // Planned at the daemon's own 80 % (three accounts ask far less than the default engine rate):
        // 20 records at 80 records/s plus the 10 s margin, less the second the bench leaves the
        // planner, counted from before the INSERT (so at most 9.25 s after its commit).
        #expect(report["utilisation"] as? Double == 0.8)
        let deadline = try #require(report["deadline_ms"] as? Int)
        #expect(deadline > 0 && deadline <= 9_250, "deadline \(deadline) ms after the INSERT")
    }

    @Test func badOptionsAreRefusedWithTheirName() async throws {
        let result = try await run(callwindowBinary, ["bench", "accounts", "--accounts", "0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--accounts"))
    }
}
