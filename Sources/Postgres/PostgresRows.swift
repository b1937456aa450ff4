import CLibPQ

/// The rows a statement returned, decoded on demand from libpq's binary-format result.
///
/// Owns its `PGresult` and frees it exactly once; immutable after creation, so it may be read
/// from any task.
public final class PostgresRows: Sendable, Sequence {
    // `PGresult` is read-only once returned by libpq; only `deinit` frees it.
    nonisolated(unsafe) private let result: OpaquePointer
    /// Column names in order.
    public let columns: [String]
    private let columnIndex: [String: Int]
    /// Number of rows.
    public let count: Int
    /// Rows affected by an INSERT/UPDATE/DELETE/COPY/SELECT, from the command tag (0 if none).
    public let affectedRows: Int
    let tag: String

    init(taking result: OpaquePointer) {
        self.result = result
        let fieldCount = Int(PQnfields(result))
        var names: [String] = []
        var index: [String: Int] = [:]
        for column in 0..<fieldCount {
            let name = String(cString: PQfname(result, Int32(column)))
            names.append(name)
            if index[name] == nil { index[name] = column }
        }
        columns = names
        columnIndex = index
        count = Int(PQntuples(result))
        affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
        tag = String(cString: PQcmdStatus(result))
    }

    deinit { PQclear(result) }

    /// The row at `index` (0-based).
    public subscript(index: Int) -> PostgresRow { PostgresRow(rows: self, index: index) }

    /// The first row, or `nil` when there are none.
    public var first: PostgresRow? { count > 0 ? self[0] : nil }

    /// Iterates the rows in order.
    public func makeIterator() -> AnyIterator<PostgresRow> {
        var next = 0
        return AnyIterator { [self] in
            guard next < count else { return nil }
            defer { next += 1 }
            return self[next]
        }
    }

    func column(named name: String) throws(PostgresError) -> Int {
        guard let column = columnIndex[name] else {
            throw PostgresError(code: .decoding, message: "the result has no column \"\(name)\" (it has: \(columns.joined(separator: ", ")))")
        }
        return column
    }

    func decode<T: PostgresDecodable>(row: Int, column: Int, as type: T.Type) throws(PostgresError) -> T {
        guard row >= 0, row < count, column >= 0, column < columns.count else {
            throw PostgresError(code: .decoding, message: "row \(row), column \(column) is out of range")
        }
        if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
            guard let null = T.postgresNull else {
                throw PostgresError(code: .decoding, message: "column \"\(columns[column])\" is NULL but \(T.self) was expected; decode an Optional")
            }
            return null
        }
        let oid = PQftype(result, Int32(column))
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        guard let start = PQgetvalue(result, Int32(row), Int32(column)) else {
            throw PostgresError(code: .protocolViolation, message: "libpq returned no value for column \"\(columns[column])\"")
        }
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(start), count: length)
        do {
            return try T(postgresBytes: bytes, type: oid)
        } catch {
            var error = error
            error.message = "column \"\(columns[column])\": " + error.message
            error.column = columns[column]
            throw error
        }
    }
}

/// One row of a `PostgresRows`.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    /// Decodes the column named `column`; a NULL is an error unless `T` is an Optional.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        try rows.decode(row: index, column: try rows.column(named: column), as: type)
    }

    /// Decodes the column at `column` (0-based).
    public func decode<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
        try rows.decode(row: index, column: column, as: type)
    }
}
