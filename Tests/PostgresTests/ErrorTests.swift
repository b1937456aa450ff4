import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Errors carry what PostgreSQL reported, and nothing secret", .timeLimit(.minutes(3)))
struct ErrorTests {
    @Test("a unique violation surfaces SQLSTATE 23505 with the constraint and table names")
    func uniqueViolation() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let table = "uniq_\(UUID().uuidString.prefix(8).lowercased())"
            try await connection.execute("CREATE TABLE \(table) (id int CONSTRAINT \(table)_id_key UNIQUE)")
            try await connection.execute("INSERT INTO \(table) VALUES ($1)", Int32(1))
            let error = await #expect(throws: PostgresError.self) {
                try await connection.execute("INSERT INTO \(table) VALUES ($1)", Int32(1))
            }
            #expect(error?.sqlState == "23505")
            #expect(error?.constraint == "\(table)_id_key")
            #expect(error?.table == table)
            #expect(error?.detail?.contains("(id)=(1)") == true)
            #expect(error?.code == .server)
            // The row's values (detail) and the server's words stay out of what is printed.
            #expect(error?.description == "server error: unique violation [SQLSTATE 23505] (constraint \(table)_id_key)")
            #expect(error?.debugDescription.contains("(id)=(1)") == true)
            try await connection.execute("DROP TABLE \(table)")
        }
    }

    @Test("a syntax error surfaces SQLSTATE 42601 and its description omits the SQL text")
    func syntaxError() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELEC secret_column_name FROM nowhere")
            }
            #expect(error?.sqlState == "42601")
            #expect(error?.description.contains("SELEC secret_column_name") == false)
        }
    }

    @Test("a connection error names host, port and database but never the password")
    func connectionErrorHidesPassword() async throws {
        let configuration = try PostgresConfiguration("postgres://someone:hunter2-SECRET@127.0.0.1:1/somedb?connect_timeout=2")
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(configuration)
        }
        let text = try #require(error).description
        #expect(error?.code == .connectionFailed)
        #expect(text.contains("127.0.0.1"))
        #expect(text.contains("1"))
        #expect(text.contains("somedb"))
        #expect(!text.contains("hunter2-SECRET"))
        #expect(!configuration.description.contains("hunter2-SECRET"))
    }

    @Test("a wrong password is reported without echoing it")
    func wrongPassword() async throws {
        // The test cluster trusts everyone, so ask for a role that does not exist instead.
        let base = try TestDatabase.configuration()
        let url = "postgres://nobody_here:topsecret-PASS@\(base.endpoint.split(separator: "/")[0])/callwindow"
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(try PostgresConfiguration(url))
        }
        #expect(error?.description.contains("topsecret-PASS") == false)
        #expect(error?.description.contains("nobody_here") == true)
    }

    @Test("a password in a connection string libpq cannot parse is never printed", arguments: [
        ("postgres://u:Zq9%xx secretpw@localhost/db", ["Zq9", "secretpw"]),
        ("postgresql://u:p@ss%zzword@[::1/db", ["p@ss", "zzword"]),
        ("postgres://u@localhost/db?password=Hunter%2-two&sslmode=nope%", ["Hunter", "two"]),
        ("host=localhost password='a b %secret' dbname", ["secret"]),
        ("host=localhost password=plain-secret-9 bogus", ["plain-secret-9"]),
    ])
    func unparsableWithPassword(conninfo: String, secrets: [String]) throws {
        let error = #expect(throws: PostgresError.self) { try PostgresConfiguration(conninfo) }
        let shown = "\(error?.description ?? "") \(error?.debugDescription ?? "")"
        #expect(shown.contains("cannot be parsed"))
        for secret in secrets {
            #expect(!shown.contains(secret), "\(secret) shown in: \(shown)")
        }
    }

    @Test("errors retrying cannot fix are told apart from those it can")
    func permanence() {
        let server = { (state: String) in PostgresError(code: .server, message: "m", sqlState: state) }
        for state in ["22021", "23505", "42P01", "54000"] { #expect(server(state).isPermanent, "\(state)") }
        for state in ["08006", "40001", "55P03", "57P01", "53300"] { #expect(!server(state).isPermanent, "\(state)") }
        #expect(!PostgresError(code: .connectionLost, message: "gone").isPermanent)
    }

    @Test("an unparsable URL is a clear error")
    func badURL() throws {
        let error = #expect(throws: PostgresError.self) { try PostgresConfiguration("postgres://x:y@[::1") }
        #expect(error?.description.contains("cannot be parsed") == true)
    }
}
