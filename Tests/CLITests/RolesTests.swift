import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Postgres
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A fresh database migrated by a dedicated non-superuser owner, with `sql/roles.sql` applied by
/// the administrator (the cluster's superuser) under role names unique to this run — roles are
/// cluster-wide, so parallel runs on one server never meet — and one LOGIN role in each group.
/// `close()` drops the database and every role it created.
struct RolesFixture {
    let suffix: String
    let database: String
    let admin: PostgresConfiguration
    let adminURL: String
    let owner: String
    let ownerURL: String
    let app: String
    let author: String
    let reader: String
    /// The dashboard's actions; no login role is granted it by the fixture.
    var operatorRole: String { "cwt_operator_\(suffix)" }
    /// Login roles granted exactly one group each.
    let appLogin: String
    let authorLogin: String
    let readerLogin: String

    var groups: [String] { [app, author, reader] }
    var logins: [String] { [appLogin, authorLogin, readerLogin] }

    /// The conninfo of `role` on the fixture's database (trust or password authentication).
    func url(_ role: String) -> String {
        adminURL + " user='\(role)' password='\(Self.password(role))'"
    }

    static func password(_ role: String) -> String { "pw-\(role)" }

    static func make() async throws -> RolesFixture {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let base = try TestDatabase.configuration()
        let name = "cw_roles_\(suffix)"
        let owner = "cwt_owner_\(suffix)"
        let root = try await PostgresConnection.connect(base)
        try await root.execute("CREATE ROLE \(owner) LOGIN PASSWORD '\(password(owner))'")
        try await root.execute("CREATE DATABASE \(name)")
        // The owner may create the schema; it is no superuser and holds no CREATEROLE.
        try await root.execute("GRANT CREATE ON DATABASE \(name) TO \(owner)")
        await root.close()
        let admin = base.database(name)
        let adminURL = admin.conninfoForTests
        let fixture = RolesFixture(
            suffix: String(suffix), database: name, admin: admin, adminURL: adminURL, owner: owner,
            ownerURL: adminURL + " user='\(owner)' password='\(password(owner))'",
            app: "cwt_app_\(suffix)", author: "cwt_author_\(suffix)", reader: "cwt_reader_\(suffix)",
            appLogin: "cwt_app_login_\(suffix)", authorLogin: "cwt_author_login_\(suffix)", readerLogin: "cwt_reader_login_\(suffix)")
        let migrate = try await run(callwindowBinary, ["migrate", "--database-url", fixture.ownerURL, "--sql-dir", TestDatabase.sqlDirectory.path])
        try #require(migrate.status == 0, "migrate as the owner failed: \(migrate.stderr)")
        // Twice: the file is idempotent.
        for _ in 0..<2 {
            let applied = try await fixture.applyRoles()
            try #require(applied.status == 0, "psql -f sql/roles.sql failed: \(applied.stderr)")
        }
        let connection = try await PostgresConnection.connect(admin)
        for (login, group) in zip(fixture.logins, fixture.groups) {
            try await connection.execute("CREATE ROLE \(login) LOGIN PASSWORD '\(password(login))' IN ROLE \(group)")
        }
        await connection.close()
        return fixture
    }

    /// `psql -f sql/roles.sql` as the administrator, with this run's role names.
    func applyRoles() async throws -> ProcessResult {
        try await run(try Self.psql(), [
            "-X", "-q", "-d", adminURL, "-v", "ON_ERROR_STOP=1",
            "-v", "app_role=\(app)", "-v", "author_role=\(author)", "-v", "reader_role=\(reader)", "-v", "operator_role=\(operatorRole)",
            "-f", TestDatabase.sqlDirectory.appendingPathComponent("roles.sql").path,
        ])
    }

    static func psql() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":").map(String.init) + ["/usr/bin"] {
            let candidate = URL(fileURLWithPath: folder).appendingPathComponent("psql")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        struct NoPsql: Error, CustomStringConvertible {
            var description: String { "psql is not installed: apt-get install -y postgresql-client (scripts/test does)" }
        }
        throw NoPsql()
    }

    /// Drops the database, then the roles (their privileges went with the database).
    func close() async {
        guard let root = try? await PostgresConnection.connect(try TestDatabase.configuration()) else { return }
        _ = try? await root.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
        for role in logins + groups + [operatorRole, owner] {
            _ = try? await root.execute("DROP ROLE IF EXISTS \(role)")
        }
        await root.close()
    }

    /// Runs `body` with a fixture and always cleans up.
    static func with(_ body: (RolesFixture) async throws -> Void) async throws {
        let fixture = try await make()
        do {
            try await body(fixture)
        } catch {
            await fixture.close()
            throw error
        }
        await fixture.close()
    }
}

@Suite("sql/roles.sql: the daemon runs as callwindow_app; authors write campaigns only; readers write nothing", .serialized, .timeLimit(.minutes(6)))
struct RolesTests {
    /// Expects `sql` to fail for lack of privilege (SQLSTATE 42501).
    static func expectDenied(_ sql: String, on connection: PostgresConnection, as who: String,
                             sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            _ = try await connection.execute(sql)
            Issue.record("\(who) was allowed to run: \(sql)", sourceLocation: sourceLocation)
        } catch let error as PostgresError {
            #expect(error.sqlState == "42501", "\(who): \(sql) failed otherwise: \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(who): \(sql): \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a login role granted only the app role syncs labels, runs the daemon until a window is pushed and audited, reads status and the audit; prune stays with the owner")
    func daemonAsAppRole() async throws {
        try await RolesFixture.with { fixture in
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let config = try DaemonTests.configFile(
                port: sandbox.port, api: ", transport: v1", "tokens: {max: 2}\nscheduler: {poll_seconds: 1}\nhttp: {port: 0}")
            let environment = DaemonTests.environment(fixture.url(fixture.appLogin))

            // labels sync as the app role (upserts into callwindow.labels, mints one token).
            let sync = try await run(callwindowBinary, ["labels", "sync", "--config", config], environment: environment)
            #expect(sync.status == 0, "labels sync as the app role: \(sync.stderr)")

            // The campaign comes from the author role.
            try await closing(try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.authorLogin)))) { author throws in
                let campaign = try await DaemonTests.campaignDueNow(receivers: 150, lead: "38 seconds", on: author)

                try await closing(try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.readerLogin)))) { reader throws in
                    let daemon = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: environment)
                    defer { daemon.signal(SIGKILL) }
                    try await waitUntil(timeout: .seconds(90), "every record accepted (daemon stderr: \(daemon.stderr.suffix(3000)))") {
                        try await reader.query("SELECT accepted FROM callwindow.campaign_progress WHERE campaign_id = $1", campaign)[0]
                            .decode("accepted", as: Int.self) == 300
                    }
                    daemon.signal(SIGTERM)
                    let ended = await daemon.wait()
                    #expect(ended.status == 0, "daemon stderr: \(ended.stderr.suffix(3000))")
                    #expect(!ended.stderr.contains("permission denied") && !ended.stderr.contains("42501"), "daemon stderr: \(ended.stderr.suffix(3000))")
                    #expect(!ended.stderr.contains(RolesFixture.password(fixture.appLogin)))
                    #expect(Set(sandbox.records.map { "\($0["caller"] ?? "")>\($0["receiver"] ?? "")" }).count == 300)
                    let audited = try await reader.query(
                        "SELECT count(DISTINCT delivery_id) AS n FROM callwindow.push_attempts WHERE campaign_id = $1 AND outcome = 'accepted'", campaign)
                    #expect(try audited[0].decode("n", as: Int.self) == 300)

                    // The audit partitions the daemon made belong to the owner; the app's login owns nothing.
                    try await closing(try await PostgresConnection.connect(fixture.admin)) { admin throws in
                        let owners = try await admin.query(
                            """
                            SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                            WHERE i.inhparent = 'callwindow.push_attempts'::regclass
                            """).map { try $0.decode("owner", as: String.self) }
                        #expect(owners == [fixture.owner])
                        let owned = try await admin.query(
                            "SELECT count(*) AS n FROM pg_class WHERE pg_get_userbyid(relowner) IN ($1, $2)", fixture.appLogin, fixture.app)
                        #expect(try owned[0].decode("n", as: Int.self) == 0)

                        // status and audit export as the app role.
                        let status = try await run(callwindowBinary, ["status", "--campaign", String(campaign), "--json"], environment: environment)
                        #expect(status.status == 0, "status as the app role: \(status.stderr)")
                        #expect(status.stdout.contains("\"accepted\" : 300") || status.stdout.contains("\"accepted\":300"), "status: \(status.stdout)")
                        let export = try await run(callwindowBinary, ["audit", "export", "--campaign", String(campaign)], environment: environment)
                        #expect(export.status == 0, "audit export as the app role: \(export.stderr)")
                        #expect(export.stdout.split(separator: "\n").filter { $0.contains(",accepted,") }.count >= 300)

                        // Pruning drops partitions: refused to the app role, done by the owner.
                        let farFuture = "2099-01-01T00:00:00Z"
                        let denied = try await run(callwindowBinary, ["audit", "prune", "--older-than", "30d", "--now", farFuture], environment: environment)
                        #expect(denied.status != 0)
                        #expect(denied.stderr.contains("permission denied") && denied.stderr.contains("SQLSTATE 42501"), "stderr: \(denied.stderr)")
                        let pruned = try await run(callwindowBinary, ["audit", "prune", "--older-than", "30d", "--now", farFuture, "--database-url", fixture.ownerURL])
                        #expect(pruned.status == 0, "prune as the owner: \(pruned.stderr)")
                        #expect(pruned.stdout.contains("dropped"))
                    }
                }
            }
        }
    }

    @Test("the dashboard's pause as the app role: a clear 403 page until an administrator grants callwindow_operator, then it pauses; the app role still cannot write campaigns")
    func dashboardActionsNeedTheOperatorGrant() async throws {
        try await RolesFixture.with { fixture in
            let sandbox = try await RunningSandbox.start()
            defer { sandbox.process.signal(SIGKILL) }
            let config = try DaemonTests.configFile(
                port: sandbox.port, api: ", transport: v1", "tokens: {max: 1}\nscheduler: {poll_seconds: 1}\nhttp: {port: 0, actions: true}")
            let environment = DaemonTests.environment(fixture.url(fixture.appLogin))
            let sync = try await run(callwindowBinary, ["labels", "sync", "--config", config], environment: environment)
            #expect(sync.status == 0, "labels sync as the app role: \(sync.stderr)")
            let author = try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.authorLogin)))
            let campaign = try await DaemonTests.campaignDueNow(receivers: 5, lead: "38 seconds", on: author)
            await author.close()
            try await closing(try await PostgresConnection.connect(fixture.admin)) { admin throws in
                func status() async throws -> String {
                    try await admin.query("SELECT status FROM callwindow.campaigns WHERE id = $1", campaign)[0].decode("status")
                }
                let daemon = try ChildProcess(callwindowBinary, ["run", "--config", config], environment: environment)
                defer { daemon.signal(SIGKILL) }
                var base = ""
                try await waitUntil(timeout: .seconds(60), "the dashboard to listen (stderr: \(daemon.stderr.suffix(2000)))") {
                    guard let line = daemon.stderr.split(separator: "\n").first(where: { $0.contains("operations endpoint listening") }),
                          let url = line.split(separator: " ").first(where: { $0.hasPrefix("url=") }) else { return false }
                    base = String(url.dropFirst(4))
                    return true
                }
                let (confirmData, _) = try await URLSession.shared.data(from: try #require(URL(string: "\(base)/campaigns/\(campaign)/confirm/pause")))
                let confirm = String(decoding: confirmData, as: UTF8.self)
                let csrf = try #require(confirm.firstMatch(of: #/name="csrf" value="([0-9a-f]{64})"/#).map { String($0.1) }, "page: \(confirm)")
                func pause() async throws -> (Int, String) {
                    var request = URLRequest(url: try #require(URL(string: "\(base)/campaigns/\(campaign)/actions/pause")))
                    request.httpMethod = "POST"
                    request.setValue(base, forHTTPHeaderField: "Origin")
                    request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
                    request.httpBody = Data("csrf=\(csrf)".utf8)
                    let (data, response) = try await URLSession.shared.data(for: request)
                    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
                }
                let refused = try await pause()
                #expect(refused.0 == 403, "answer: \(refused.1)")
                #expect(refused.1.contains("GRANT callwindow_operator TO the daemon&#39;s login role"), "answer: \(refused.1)")
                #expect(!refused.1.contains(RolesFixture.password(fixture.appLogin)))
                #expect(try await status() == "active")

                try await admin.execute("GRANT \(fixture.operatorRole) TO \(fixture.appLogin)")
                // 303 to the campaign page, which URLSession follows.
                let paused = try await pause()
                #expect(paused.0 == 200, "answer: \(paused.1)")
                #expect(paused.1.contains("/confirm/resume"))
                #expect(try await status() == "paused")
                // The grant lets the app role call the function, not write the table.
                try await closing(try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.appLogin)))) { app throws in
                    await Self.expectDenied("UPDATE callwindow.campaigns SET status = 'active' WHERE id = \(campaign)", on: app, as: "the app role with the operator grant")
                }
                #expect(try await status() == "paused")
                daemon.signal(SIGTERM)
                let ended = await daemon.wait()
                #expect(ended.status == 0, "daemon stderr: \(ended.stderr.suffix(3000))")
            }
        }
    }

    @Test("the author role writes the campaign tables and nothing else; the reader reads and writes nothing; the app role cannot write campaigns")
    func authorAndReader() async throws {
        try await RolesFixture.with { fixture in
            try await closing(try await PostgresConnection.connect(fixture.admin)) { admin throws in
                try await admin.execute(
                    "INSERT INTO callwindow.labels (client_account_id, id, name, label_type) VALUES ($1::uuid, $2::uuid, 'Acme Deliveries', 'dynamic')",
                    DaemonTests.client, DaemonTests.label)
                _ = try await admin.query("SELECT callwindow.ensure_push_attempt_partitions(now(), 0) AS n")

                try await closing(try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.authorLogin)))) { author throws in
                    let campaign = try await DaemonTests.campaignDueNow(receivers: 3, lead: "5 minutes", on: author)
                    try await author.execute("INSERT INTO callwindow.campaign_pairs (campaign_id, caller, receiver) VALUES ($1, '4930000009', '4915100000099')", campaign)
                    try await author.execute("UPDATE callwindow.campaigns SET status = 'paused' WHERE id = $1", campaign)
                    try await author.execute("DELETE FROM callwindow.campaign_receivers WHERE campaign_id = $1 AND phone = '4915100000003'", campaign)
                    #expect(try await author.query("SELECT count(*) AS n FROM callwindow.campaign_progress")[0].decode("n", as: Int.self) == 1)
                    // Validation still speaks to the author (the trigger reads labels with the author's rights).
                    do {
                        try await author.execute("INSERT INTO callwindow.campaign_callers (campaign_id, phone) VALUES ($1, '+91 98x')", campaign)
                        Issue.record("a bad phone was accepted")
                    } catch let error as PostgresError {
                        #expect(error.sqlState == "23514" && error.message.contains("is not a phone number"), "\(error)")
                    }
                    for sql in [
                        "INSERT INTO callwindow.deliveries DEFAULT VALUES",
                        "UPDATE callwindow.deliveries SET state = state",
                        "DELETE FROM callwindow.deliveries",
                        "INSERT INTO callwindow.push_attempts DEFAULT VALUES",
                        "INSERT INTO callwindow.tokens DEFAULT VALUES",
                        "UPDATE callwindow.tokens SET revoked_at = NULL",
                        "DELETE FROM callwindow.tokens",
                        "SELECT fingerprint FROM callwindow.tokens",
                        "INSERT INTO callwindow.token_mints DEFAULT VALUES",
                        "INSERT INTO callwindow.windows DEFAULT VALUES",
                        "UPDATE callwindow.windows SET state = state",
                        "INSERT INTO callwindow.campaign_state DEFAULT VALUES",
                        "INSERT INTO callwindow.labels DEFAULT VALUES",
                        "DELETE FROM callwindow.labels",
                        "INSERT INTO callwindow.schema_migrations DEFAULT VALUES",
                        "SELECT callwindow.ensure_push_attempt_partitions(now(), 1)",
                        "CREATE TABLE callwindow.mine (id int)",
                    ] {
                        await Self.expectDenied(sql, on: author, as: "the author role")
                    }

                    try await closing(try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.readerLogin)))) { reader throws in
                        for table in ["campaigns", "campaign_callers", "campaign_receivers", "campaign_pairs", "labels", "windows", "deliveries",
                                      "push_attempts", "campaign_state", "token_mints", "schema_migrations", "campaign_progress", "window_progress"] {
                            _ = try await reader.query("SELECT count(*) AS n FROM callwindow.\(table)")
                        }
                        _ = try await reader.query("SELECT fingerprint, expires_at, lease_owner, revoked_at FROM callwindow.tokens")
                        await Self.expectDenied("SELECT ciphertext FROM callwindow.tokens", on: reader, as: "the reader role")
                        for table in ["campaigns", "campaign_callers", "campaign_receivers", "campaign_pairs", "labels", "windows", "deliveries",
                                      "push_attempts", "campaign_state", "token_mints", "tokens", "schema_migrations"] {
                            await Self.expectDenied("INSERT INTO callwindow.\(table) DEFAULT VALUES", on: reader, as: "the reader role")
                            await Self.expectDenied("DELETE FROM callwindow.\(table)", on: reader, as: "the reader role")
                        }
                        await Self.expectDenied("UPDATE callwindow.campaigns SET status = 'cancelled'", on: reader, as: "the reader role")
                        await Self.expectDenied("SELECT callwindow.ensure_push_attempt_partitions(now(), 1)", on: reader, as: "the reader role")
                        await Self.expectDenied("SELECT callwindow.drop_push_attempt_partitions(now())", on: reader, as: "the reader role")

                        try await closing(try await PostgresConnection.connect(try PostgresConfiguration(fixture.url(fixture.appLogin)))) { app throws in
                            await Self.expectDenied("UPDATE callwindow.campaigns SET status = 'cancelled'", on: app, as: "the app role")
                            await Self.expectDenied("DELETE FROM callwindow.campaign_receivers", on: app, as: "the app role")
                            await Self.expectDenied("DELETE FROM callwindow.push_attempts_\(Self.currentMonth())", on: app, as: "the app role")
                            await Self.expectDenied("DROP TABLE callwindow.push_attempts_\(Self.currentMonth())", on: app, as: "the app role")

                            // Deleting a campaign cascades to what the scheduler made of it, with the owner's rights.
                            try await author.execute("DELETE FROM callwindow.campaigns WHERE id = $1", campaign)
                            #expect(try await reader.query("SELECT count(*) AS n FROM callwindow.campaigns")[0].decode("n", as: Int.self) == 0)
                        }
                    }
                }
            }
        }
    }

    /// `YYYY_MM` of today (UTC): the partition the migration's callers create first.
    static func currentMonth() -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy_MM"
        return formatter.string(from: Date())
    }
}
