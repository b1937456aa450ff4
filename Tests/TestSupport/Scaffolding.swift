public import CallRecordAPI
public import Foundation
public import Planning
public import Postgres
public import Sandbox
import Store

extension TestDatabase {
    /// Brings the database behind `connection` to the latest schema (idempotent; concurrent
    /// callers are serialised by the migrator's advisory lock).
    public static func migrate(_ connection: PostgresConnection) async throws {
        _ = try await Migrator(migrations: try Migration.load(from: sqlDirectory)).migrate(connection)
    }
}

/// Runs `body` on a connection of its own to the migrated test database, then closes it whether
/// `body` returned or threw. With `fresh`, the database is a new, empty one named after it (for a
/// test that reads whole tables); otherwise it is the shared one, and the test keeps to a client
/// account of its own.
public func withMigratedDatabase<T>(fresh label: String? = nil, _ body: (PostgresConnection) async throws -> T) async throws -> T {
    let configuration = if let label { try await TestDatabase.fresh(label) } else { try TestDatabase.configuration() }
    return try await closing(try await PostgresConnection.connect(configuration)) { connection in
        try await TestDatabase.migrate(connection)
        return try await body(connection)
    }
}

/// One client account as the sandbox knows it: its id, an API key and one dynamic label.
public struct SandboxAccount: Sendable {
    public let client: UUID
    public let key: APIKey
    public let label: UUID
    public let labelName: String

    public init(client: UUID = UUID(), label: UUID = UUID(), labelName: String = "Acme") {
        self.client = client
        key = APIKey(keyID: UUID(), apiKey: UUID().uuidString.lowercased())
        self.label = label
        self.labelName = labelName
    }

    /// A sandbox configuration serving this account alone.
    public func configuration(limits: SandboxConfiguration.Limits = .init(), faults: SandboxConfiguration.Faults = .init()) -> SandboxConfiguration {
        SandboxConfiguration(
            clients: [.init(clientAccountID: client, apiKeys: [.init(keyID: key.keyID, apiKey: key.apiKey)],
                            labels: [.init(id: label, name: labelName, isDynamic: true)])],
            limits: limits, faults: faults)
    }
}

/// Runs an in-process sandbox serving `account` on a free port, timed on `clock`, while `body`
/// runs; `body` gets the server (for its stats and switches) and the port. The server stops
/// whatever `body` did.
public func withAccountSandbox<T: Sendable>(
    _ account: SandboxAccount, clock: any WallClock, limits: SandboxConfiguration.Limits = .init(),
    faults: SandboxConfiguration.Faults = .init(), _ body: @escaping @Sendable (SandboxServer, Int) async throws -> T
) async throws -> T {
    let server = try SandboxServer(configuration: account.configuration(limits: limits, faults: faults), clock: clock, port: 0)
    return try await server.withRunning { port in try await body(server, port) }
}

/// A campaign as a test inserts it with plain SQL, the way a user does: its period and daily
/// hours, lead, status, callers and generated receivers. `insert` writes it in one transaction
/// (one NOTIFY per table) and returns its id.
public struct CampaignSeed: Sendable {
    public var client: UUID
    public var label: UUID
    public var name = "seed"
    /// The period, in epoch ms.
    public var startsAt: Int64
    public var endsAt: Int64
    /// Daily hours (`HH:MM`) in `timeZone`; both or neither.
    public var dailyStart: String?
    public var dailyEnd: String?
    public var timeZone = "UTC"
    /// A PostgreSQL interval, e.g. `10 minutes`.
    public var lead = "10 minutes"
    public var callReason: String?
    public var status = "active"
    public var callers = ["4930000001"]
    /// Receivers generated as 4915100000001, 4915100000002, …
    public var receivers = 1

    public init(client: UUID, label: UUID, startsAt: Int64, endsAt: Int64) {
        self.client = client
        self.label = label
        self.startsAt = startsAt
        self.endsAt = endsAt
    }

    /// Inserts the campaign, its callers and receivers; returns the campaign's id.
    public func insert(on connection: PostgresConnection) async throws -> Int64 {
        try await connection.transaction { connection in
            let id: Int64 = try await connection.query(
                """
                INSERT INTO callwindow.campaigns (client_account_id, name, label_id, starts_at, ends_at, daily_start, daily_end,
                                                  time_zone, lead, call_reason, status)
                VALUES ($1, $2, $3, callwindow.at_ms($4), callwindow.at_ms($5), $6::time, $7::time, $8, $9::interval, $10, $11)
                RETURNING id
                """, client, name, label, startsAt, endsAt, dailyStart, dailyEnd, timeZone, lead, callReason, status)[0].decode("id")
            for caller in callers {
                try await connection.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, $2)", id, caller)
            }
            try await connection.execute(
                "INSERT INTO callwindow.campaign_receivers (campaign_id, phone) SELECT $1, (4915100000000 + g)::text FROM generate_series(1, $2::int4) g",
                id, Int32(receivers))
            return id
        }
    }

    /// Inserts the dynamic (or static) label `label` named `name` for `client`.
    public static func label(client: UUID, label: UUID, name: String = "Acme", dynamic: Bool = true, on connection: PostgresConnection) async throws {
        try await connection.execute(
            "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1, $2, $3, $4)",
            client, label, name, dynamic ? "dynamic" : "static")
    }
}
