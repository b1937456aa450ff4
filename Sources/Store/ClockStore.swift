public import Planning
public import Postgres

/// The database's clock, which every instance sharing the database reads alike.
public enum ClockStore {
    /// One reading of the database's clock (`clock_timestamp()`, the instant the statement
    /// runs) between two readings of `raw`, taken once the connection is in hand so that waiting
    /// for the pool does not count.
    public static func sample(_ raw: any WallClock, on pool: PostgresPool) async throws -> CalibratedClock.Sample {
        try await pool.withConnection { connection in
            let before = raw.now()
            let reference = try await connection.query(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8 AS ms")[0].decode("ms", as: Int64.self)
            return CalibratedClock.Sample(before: before, reference: reference, after: raw.now())
        }
    }
}
