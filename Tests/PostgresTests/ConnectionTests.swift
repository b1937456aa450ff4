import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Transactions, COPY, LISTEN/NOTIFY and concurrency", .timeLimit(.minutes(2)))
struct ConnectionTests {
    /// Waits until backend `pid` is running a statement containing `text` (so a cancel reaches it).
    static func waitUntilRunning(_ text: String, backend pid: Int32) async throws {
        try await closing(try await TestDatabase.connect()) { observer throws in
            try await waitUntil(timeout: .seconds(30), "backend \(pid) to run \(text)") {
                try await observer.query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND position($2 in query) > 0",
                    pid, text)[0].decode("n", as: Int.self) == 1
            }
        }
    }

    @Test("a transaction commits on success and rolls back when its body throws")
    func transactions() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let table = "tx_\(UUID().uuidString.prefix(8).lowercased())"
            try await connection.execute("CREATE TABLE \(table) (v int8)")
            try await connection.transaction { try await $0.execute("INSERT INTO \(table) VALUES ($1)", 1) }
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO \(table) VALUES ($1)", 2)
                    throw Boom()
                }
            }
            // An error swallowed inside the body still fails the commit instead of passing silently.
            let swallowed = await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO \(table) VALUES ($1)", 3)
                    _ = try? await connection.execute("SELECT 1/0")
                }
            }
            #expect(swallowed?.sqlState == "25P02")
            let values = try await connection.query("SELECT v FROM \(table) ORDER BY v").map { try $0.decode("v", as: Int.self) }
            #expect(values == [1])
            try await connection.execute("DROP TABLE \(table)")
        }
    }

    @Test("COPY FROM STDIN loads 100,000 rows with escaping and NULLs intact")
    func copy100k() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let table = "copy_\(UUID().uuidString.prefix(8).lowercased())"
            try await connection.execute("CREATE TABLE \(table) (id int8, phone text, note text)")
            let count = 100_000
            let rows: [[String?]] = (0..<count).map { index in
                [String(index), String(910_000_000_000 + index), index % 1000 == 0 ? nil : "tab\there\\ new\nline ü"]
            }
            // Throughput is `callwindow bench postgres`'s business; here, every row arrives intact.
            let copied = try await connection.copyFrom("COPY \(table) (id, phone, note) FROM STDIN", rows: rows)
            #expect(copied == count)
            let check = try await connection.query(
                "SELECT count(*) AS n, count(note) AS notes, max(note) AS sample FROM \(table)")[0]
            #expect(try check.decode("n", as: Int.self) == count)
            #expect(try check.decode("notes", as: Int.self) == count - count / 1000)
            #expect(try check.decode("sample", as: String.self) == "tab\there\\ new\nline ü")
            try await connection.execute("DROP TABLE \(table)")
        }
    }

    @Test("a COPY the server rejects reports the error and leaves the connection usable")
    func copyError() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let table = "copyerr_\(UUID().uuidString.prefix(8).lowercased())"
            try await connection.execute("CREATE TABLE \(table) (id int8)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.copyFrom("COPY \(table) (id) FROM STDIN", rows: [["1"], ["not a number"]])
            }
            #expect(error?.sqlState == "22P02")
            #expect(try await connection.query("SELECT count(*) AS n FROM \(table)")[0].decode("n", as: Int.self) == 0)
            try await connection.execute("DROP TABLE \(table)")
        }
    }

    @Test("a NOTIFY on one connection reaches a LISTENer on another")
    func listenNotify() async throws {
        try await closing(try await TestDatabase.connect()) { listener throws in
            try await closing(try await TestDatabase.connect()) { notifier throws in
                let channel = "chan_\(UUID().uuidString.prefix(8).lowercased())"
                try await listener.listen(channel)
                #expect(try await listener.nextNotification(timeout: .milliseconds(50)) == nil)
                // Latency is `callwindow bench postgres`'s business; here, every notification arrives in order.
                for round in 0..<20 {
                    async let received = listener.nextNotification(timeout: .seconds(30))
                    try await notifier.notify(channel, payload: "round \(round)")
                    let notification = try await received
                    #expect(notification?.channel == channel)
                    #expect(notification?.payload == "round \(round)")
                }
            }
        }
    }

    @Test("a wait for a notification or another event never drops a notification: one received already is returned at once, one arriving as the other event ends it is kept")
    func notificationOrEvent() async throws {
        try await closing(try await TestDatabase.connect()) { listener throws in
            try await closing(try await TestDatabase.connect()) { notifier throws in
                let channel = "chan_\(UUID().uuidString.prefix(8).lowercased())"
                try await listener.listen(channel)
                #expect(try await listener.nextNotification(orWhen: {}) == nil, "nothing received: the event ends the wait")
                // Received with a statement's answer (its own NOTIFY), then asked for with an
                // event that has already come: returned, every time (a race would lose most).
                for round in 0..<30 {
                    try await listener.notify(channel, payload: "own \(round)")
                    let received = try await listener.nextNotification(orWhen: {})
                    #expect(received?.payload == "own \(round)")
                }
                // Arriving on the socket just as the other event ends the wait, again and again:
                // each is returned by some wait, in order, none lost. (However slowly the machine
                // runs: what the racing waits did not return is read afterwards.)
                let sent = 800
                var payloads: [String] = []
                for round in 0..<sent {
                    try await notifier.notify(channel, payload: "\(round)")
                    if let received = try await listener.nextNotification(orWhen: { try await Task.sleep(for: .microseconds(300)) }) {
                        payloads.append(received.payload)
                    }
                }
                while payloads.count < sent, let received = try await listener.nextNotification(timeout: .seconds(10)) {
                    payloads.append(received.payload)
                }
                #expect(payloads == (0..<sent).map { "\($0)" })
            }
        }
    }

    @Test("waiting for a notification ends promptly when the task is cancelled")
    func cancelWait() async throws {
        try await closing(try await TestDatabase.connect()) { listener throws in
            try await listener.listen("never_notified")
            // Without cancellation the wait would end after 30 s with `nil`, not with CancellationError.
            let wait = Task { try await listener.nextNotification(timeout: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(100))
            wait.cancel()
            await #expect(throws: CancellationError.self) { try await wait.value }
        }
    }

    @Test("cancelling a task cancels its running statement on the server")
    func cancelStatement() async throws {
        try await closing(try await TestDatabase.connect()) { connection throws in
            let pid = try await connection.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int32.self)
            let slow = Task { try await connection.query("SELECT pg_sleep(20)") }
            try await Self.waitUntilRunning("pg_sleep(20)", backend: pid)
            slow.cancel()
            // 57014 is the server's "canceling statement due to user request": it was cancelled there.
            let error = await #expect(throws: PostgresError.self) { try await slow.value }
            #expect(error?.sqlState == "57014")
            #expect(try await connection.query("SELECT 2 AS two")[0].decode("two", as: Int.self) == 2)
        }
    }

    @Test("a shielded statement in a cancelled task waits for a busy pooled connection and runs; unshielded, it gives up")
    func shielded() async throws {
        try await closing(try await TestDatabase.pool(maxConnections: 1)) { pool throws in
            /// Runs `body` in an already-cancelled task while the pool's one connection is busy for 2 s.
            func whileBusy<T: Sendable>(_ body: @escaping @Sendable () async -> T) async throws -> T {
                try await withThrowingTaskGroup(of: T?.self) { group in
                    group.addTask { _ = try await pool.query("SELECT pg_sleep(2)"); return nil }
                    try await waitUntil(timeout: .seconds(30), interval: .milliseconds(1), "the connection to be busy") { pool.connectionsInUse == 1 }
                    let value = await withTaskGroup(of: T.self) { inner in
                        inner.cancelAll()
                        inner.addTask { await body() }
                        return await inner.next()!
                    }
                    for try await _ in group {}
                    return value
                }
            }
            let shielded = try await whileBusy {
                try? await PostgresShield.run { try await pool.query("SELECT 2 AS n")[0].decode("n", as: Int.self) }
            }
            #expect(shielded == 2)
            let unshielded = try await whileBusy { () -> Bool in
                do { _ = try await pool.query("SELECT 3"); return false } catch is CancellationError { return true } catch { return false }
            }
            #expect(unshielded, "without the shield a cancelled task stops waiting for a connection")
        }
    }

    @Test("a pooled connection whose statement was cancelled is closed, not lent again (a late cancel would hit the next statement)")
    func cancelledConnectionIsNotReused() async throws {
        let pool = PostgresPool(configuration: try TestDatabase.configuration(), maxConnections: 1)
        let first = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)
        let slow = Task { try await pool.query("SELECT pg_sleep(20)") }
        try await Self.waitUntilRunning("pg_sleep(20)", backend: Int32(first))
        slow.cancel()
        _ = try? await slow.value
        let second = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)
        #expect(second != first)
        await pool.close()
    }

    @Test("no waiter is lost: a connection released while a caller decides to wait in line reaches that caller")
    func noLostWaiter() async throws {
        // Before the fix, deciding "the pool is exhausted" and joining the line were two critical
        // sections: a release in between left the connection idle and the caller waiting for
        // ever. Each episode releases the only connection just as a second caller asks for it,
        // at a slightly different moment each time, so some releases fall in that window (with
        // the old pool: stuck at episodes 0, 88, 152 and 504 in four runs).
        let pool = PostgresPool(configuration: try TestDatabase.configuration(), maxConnections: 1)
        for episode in 0..<3_000 {
            let second = try await pool.withConnection { _ in
                let second = Task { try await pool.withConnection { _ in episode } }
                for _ in 0..<(episode % 8) { await Task.yield() }
                return second
            }
            let served = try await withTimeout(.seconds(20), "episode \(episode): the second caller to get the connection released to it") {
                try await second.value
            }
            #expect(served == episode)
        }
        #expect(pool.openConnections <= 1)
        await pool.close()
    }

    @Test("the pool never opens more than its bound and serves waiters in turn")
    func poolBound() async throws {
        let pool = PostgresPool(configuration: try TestDatabase.configuration(), maxConnections: 2)
        let tag = "pool_\(UUID().uuidString.prefix(8).lowercased())"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { try await pool.query("SELECT pg_sleep(0.05), $1::text", tag) }
            }
            try await group.waitForAll()
        }
        #expect(pool.openConnections <= 2)
        let counted = try await pool.query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'callwindow' AND datname = current_database()")
        #expect(try counted[0].decode("n", as: Int.self) >= 1)
        await pool.close()
        await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
    }

    @Test("a statement timeout set on the configuration applies to its connections; the URL's own options win")
    func statementTimeout() async throws {
        var configuration = try TestDatabase.configuration()
        configuration.statementTimeoutMs = 1_500
        try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
            #expect(try await connection.query("SHOW statement_timeout")[0].decode("statement_timeout", as: String.self) == "1500ms")
            await #expect(throws: PostgresError.self) { try await connection.query("SELECT pg_sleep(5)") }
        }
        // scripts/test hands a postgres:// URL; its own options come as a query parameter.
        let url = try TestDatabase.configuration().conninfoForTests
        var own = try PostgresConfiguration(url + (url.contains("?") ? "&" : "?") + "options=-c%20statement_timeout%3D2500")
        own.statementTimeoutMs = 1_500
        try await closing(try await PostgresConnection.connect(own)) { connection throws in
            #expect(try await connection.query("SHOW statement_timeout")[0].decode("statement_timeout", as: String.self) == "2500ms")
        }
    }

    @Test("an idle session timeout set on the configuration reaches the server, with the statement timeout")
    func idleSessionTimeout() async throws {
        var configuration = try TestDatabase.configuration()
        (configuration.statementTimeoutMs, configuration.idleSessionTimeoutMs) = (120_000, 60_000)
        try await closing(try await PostgresConnection.connect(configuration)) { connection throws in
            #expect(try await connection.query("SHOW statement_timeout")[0].decode("statement_timeout", as: String.self) == "2min")
            #expect(try await connection.query("SHOW idle_session_timeout")[0].decode("idle_session_timeout", as: String.self) == "1min")
        }
    }

    /// Runs `body` with a connection on `configuration`'s database reached through a
    /// `BlackHoleProxy` the test can cut; the connection and the proxy are closed afterwards.
    static func behindProxy(_ configuration: PostgresConfiguration,
                            _ body: (PostgresConnection, BlackHoleProxy) async throws -> Void) async throws {
        let target = configuration.hostAndPort
        let proxy = try BlackHoleProxy(upstreamHost: target.host, upstreamPort: target.port)
        defer { proxy.close() }
        let connection = try await PostgresConnection.connect(configuration.routed(host: "127.0.0.1", port: proxy.port))
        do {
            try await body(connection, proxy)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// Expects `body` to fail with `connectionLost` within 30 s (`what` names the wait), and
    /// returns the error for further checks.
    @discardableResult
    static func expectConnectionLost(_ what: String, _ body: @escaping @Sendable () async throws -> Void) async -> PostgresError? {
        let error = await #expect(throws: PostgresError.self) { try await withTimeout(.seconds(30), what, body) }
        #expect(error?.code == .connectionLost)
        return error
    }

    @Test("sever() fails at once a statement whose answer never comes (a proxy that black-holes the connection)")
    func severUnblocksAStatement() async throws {
        try await Self.behindProxy(try TestDatabase.configuration()) { connection, proxy throws in
            #expect(try await connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
            #expect(connection.backendPID > 0)
            let answers = connection.answers
            proxy.cut()
            let blocked = Task { try await connection.query("SELECT 2 AS two") }
            connection.sever()
            await Self.expectConnectionLost("the statement on the severed connection to fail") { _ = try await blocked.value }
            #expect(connection.answers == answers, "no answer came through the black hole")
            #expect(await !connection.isUsable)
        }
    }

    @Test("a client cut off in the middle of a transaction loses its row locks once the idle-in-transaction timeout ends its session")
    func idleInTransactionTimeoutReleasesLocks() async throws {
        var direct = try TestDatabase.configuration()
        let table = "idle_lock_\(UUID().uuidString.prefix(8).lowercased())"
        try await closing(try await PostgresConnection.connect(direct)) { other throws in
            try await other.execute("CREATE TABLE \(table) (id int PRIMARY KEY)")
            try await other.execute("INSERT INTO \(table) VALUES (1)")
            direct.idleInTransactionTimeoutMs = 1_000
            try await Self.behindProxy(direct) { cutOff, proxy throws in
                try await cutOff.execute("BEGIN")
                #expect(try await cutOff.query("SELECT id FROM \(table) WHERE id = 1 FOR UPDATE").count == 1)
                #expect(try await other.query("SELECT id FROM \(table) WHERE id = 1 FOR UPDATE SKIP LOCKED").count == 0, "locked")
                // The server still sees a live connection (the proxy holds it open), idle in its
                // transaction: without the timeout, the row stays locked for as long as that lasts.
                proxy.cut()
                try await waitUntil(timeout: .seconds(30), "the cut-off session's row lock to be released") {
                    try await other.query("SELECT id FROM \(table) WHERE id = 1 FOR UPDATE SKIP LOCKED").count == 1
                }
                cutOff.sever()
            }
            try await other.execute("DROP TABLE \(table)")
        }
    }

    @Test("a cancelled statement whose connection went silent returns once the cancel goes unanswered (the connection is severed)")
    func cancelledStatementOnASilentConnectionReturns() async throws {
        try await Self.behindProxy(try TestDatabase.configuration()) { connection, proxy throws in
            #expect(try await connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
            proxy.cut()
            // Without a sever this waits forever: the cancel goes into the void like the statement.
            let blocked = Task { try await connection.query("SELECT 2 AS two") }
            blocked.cancel()
            await Self.expectConnectionLost("the cancelled statement on the silent connection to return") { _ = try await blocked.value }
            #expect(await !connection.isUsable)
        }
    }

    @Test("a shielded statement on a connection gone silent is not waited on forever once its task is cancelled")
    func shieldedStatementOnASilentConnectionReturns() async throws {
        try await Self.behindProxy(try TestDatabase.configuration()) { connection, proxy throws in
            #expect(try await connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
            proxy.cut()
            let blocked = Task { try await PostgresShield.run { try await connection.query("SELECT 2 AS two") } }
            blocked.cancel()
            await Self.expectConnectionLost("the shielded statement on the silent connection to return") { _ = try await blocked.value }
        }
    }

    @Test("with an answer timeout, a statement whose answer never comes fails by itself (the connection is severed); one that takes its time is still answered")
    func answerTimeoutSeversASilentConnection() async throws {
        var direct = try TestDatabase.configuration()
        direct.answerTimeoutMs = 1_500
        try await Self.behindProxy(direct) { connection, proxy throws in
            // Slower than the network, well within the limit: answered.
            #expect(try await connection.query("SELECT 1 AS one FROM pg_sleep(0.3)")[0].decode("one", as: Int.self) == 1)
            proxy.cut()
            // Without the limit this waits forever: nothing passes the cut, and TCP sees a live peer.
            let error = await Self.expectConnectionLost("the statement on the silent connection to fail by itself") {
                _ = try await connection.query("SELECT 2 AS two")
            }
            #expect(error?.message == "no answer from the server within 1500 ms: the connection was severed", "\(String(describing: error))")
            #expect(await !connection.isUsable)
        }
    }
}
