public import Postgres
import Store

/// `callwindow bench postgres`: COPY throughput and NOTIFY latency of the libpq layer, on a
/// temporary table it creates and drops (it writes nothing else).
public struct PostgresBenchmark: Sendable {
    /// Rows per COPY run.
    public var rows = 100_000
    /// COPY runs (the median is reported).
    public var runs = 5
    /// NOTIFY round trips.
    public var notifies = 200

    /// The defaults of `callwindow bench postgres`.
    public init() {}

    /// The measured figures.
    public struct Report: Sendable {
        /// Rows per second of each COPY run, sorted.
        public var copyRates: [Double]
        /// Milliseconds of each NOTIFY → LISTEN round trip, sorted.
        public var notifyLatenciesMs: [Double]

        /// The median COPY rate.
        public var copyMedian: Double { copyRates[copyRates.count / 2] }
        /// The median round trip.
        public var notifyP50Ms: Double { notifyLatenciesMs[notifyLatenciesMs.count / 2] }
        /// The 99th percentile round trip.
        public var notifyP99Ms: Double { notifyLatenciesMs[min(notifyLatenciesMs.count - 1, notifyLatenciesMs.count * 99 / 100)] }
    }

    /// Measures against `database`.
    public func run(_ database: PostgresConfiguration) async throws -> Report {
        let connection = try await PostgresConnection.connect(database)
        let listener: PostgresConnection
        do {
            listener = try await PostgresConnection.connect(database)
        } catch {
            await connection.close()
            throw error
        }
        do {
            let report = try await measure(connection, listener)
            await listener.close()
            await connection.close()
            return report
        } catch {
            await listener.close()
            await connection.close()
            throw error
        }
    }

    private func measure(_ connection: PostgresConnection, _ listener: PostgresConnection) async throws -> Report {
        try await BenchStore.createCopyTable(on: connection)
        let data: [[String?]] = (0..<rows).map { index in
            [String(index), "4930000001", String(4_915_100_000_000 + index), index % 10 == 0 ? nil : "Your parcel arrives today"]
        }
        let clock = ContinuousClock()
        var rates: [Double] = []
        for _ in 0..<max(1, runs) {
            let started = clock.now
            let copied = try await BenchStore.copy(data, on: connection)
            rates.append(Double(copied) / (clock.now - started).seconds)
        }
        try await listener.listen("callwindow_bench")
        var latencies: [Double] = []
        for round in 0..<max(1, notifies) {
            let started = clock.now
            async let received = listener.nextNotification(timeout: .seconds(5))
            try await connection.notify("callwindow_bench", payload: String(round))
            guard try await received != nil else { throw BenchmarkError("a notification did not arrive within 5 s") }
            latencies.append((clock.now - started).seconds * 1000)
        }
        return Report(copyRates: rates.sorted(), notifyLatenciesMs: latencies.sorted())
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
