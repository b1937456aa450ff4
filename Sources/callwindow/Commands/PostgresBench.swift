import ArgumentParser
import Foundation
import Postgres
import Store

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
        do {
            let configuration = try database.configuration()
            let connection = try await PostgresConnection.connect(configuration)
            try await BenchStore.createCopyTable(on: connection)
            let data: [[String?]] = (0..<rows).map { index in
                [String(index), "4930000001", String(4_915_100_000_000 + index), index % 10 == 0 ? nil : "Your parcel arrives today"]
            }
            let clock = ContinuousClock()
            var rates: [Double] = []
            for _ in 0..<runs {
                let started = clock.now
                let copied = try await BenchStore.copy(data, on: connection)
                rates.append(Double(copied) / (clock.now - started).seconds)
            }
            rates.sort()
            let listener = try await PostgresConnection.connect(configuration)
            try await listener.listen("callwindow_bench")
            var latencies: [Double] = []
            for round in 0..<notifies {
                let started = clock.now
                async let received = listener.nextNotification(timeout: .seconds(5))
                try await connection.notify("callwindow_bench", payload: String(round))
                guard try await received != nil else { throw ValidationError("a notification did not arrive within 5 s") }
                latencies.append((clock.now - started).seconds * 1000)
            }
            latencies.sort()
            await listener.close()
            await connection.close()
            let median = rates[rates.count / 2]
            print("COPY FROM STDIN: \(rows) rows × \(runs) runs: median \(Int(median)) rows/s (min \(Int(rates.first ?? 0)), max \(Int(rates.last ?? 0)))")
            print(String(format: "NOTIFY → LISTEN: %d round trips: p50 %.3f ms, p99 %.3f ms", notifies,
                         latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)]))
            if json {
                print(String(format: #"{"copy_rows_per_second": %.0f, "notify_p50_ms": %.3f, "notify_p99_ms": %.3f}"#,
                             median, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)]))
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
