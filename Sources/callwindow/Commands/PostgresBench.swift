import ArgumentParser
import Benchmarks
import Foundation

/// `callwindow bench postgres`: COPY throughput and NOTIFY latency of the libpq layer.
struct PostgresBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Measure COPY FROM STDIN rows/s and LISTEN/NOTIFY latency against a database (median of runs).",
        discussion: "Creates and drops a temporary table; writes nothing else."
    )

    @Option(help: "Rows per COPY run.")
    var rows: Int = 100_000

    @Option(help: "COPY runs (the median is reported).")
    var runs: Int = 5

    @Option(help: "NOTIFY round trips.")
    var notifies: Int = 200

    @Flag(help: "Print one JSON object on the last line.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        var bench = PostgresBenchmark()
        (bench.rows, bench.runs, bench.notifies) = (rows, runs, notifies)
        do {
            let report = try await bench.run(try database.configuration())
            let rates = report.copyRates
            print("COPY FROM STDIN: \(rows) rows × \(runs) runs: median \(Int(report.copyMedian)) rows/s (min \(Int(rates.first ?? 0)), max \(Int(rates.last ?? 0)))")
            print(String(format: "NOTIFY → LISTEN: %d round trips: p50 %.3f ms, p99 %.3f ms", notifies, report.notifyP50Ms, report.notifyP99Ms))
            if json {
                print(String(format: #"{"copy_rows_per_second": %.0f, "notify_p50_ms": %.3f, "notify_p99_ms": %.3f}"#,
                             report.copyMedian, report.notifyP50Ms, report.notifyP99Ms))
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
    }
}
