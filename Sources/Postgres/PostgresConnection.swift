import CLibPQ
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `NOTIFY` received on a connection that `LISTEN`s.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel it was sent on.
    public var channel: String
    /// The payload; empty when the sender gave none.
    public var payload: String
    /// Process id of the notifying backend.
    public var processID: Int32
}

/// One libpq connection.
///
/// Every libpq call for this connection runs on the connection's own serial dispatch queue,
/// never on Swift's cooperative thread pool, so a slow query blocks one dispatch thread and
/// no task. A connection serves one caller at a time (its statements queue up); use
/// `PostgresPool` to run statements concurrently.
public final class PostgresConnection: @unchecked Sendable {
    // Safety: `handle` and `notifications` are read and written only by blocks running on
    // `queue` (a serial queue), or in `deinit` when no other reference exists. The cancel
    // handle has its own lock because cancellation arrives from other threads.
    private let queue: DispatchQueue
    private var handle: OpaquePointer?
    private var notifications: [PostgresNotification] = []
    private let cancelHandle = Mutex<CancelHandle?>(nil)
    /// Set once a cancel was sent. The server may act on a cancel request late — after the
    /// statement it was meant for has finished — and would then cancel whatever runs next on
    /// this connection; so a connection that was ever cancelled is not reused.
    private let cancelRequested = Mutex(false)
    /// A descriptor of the connection's socket that this object owns (a duplicate of libpq's,
    /// -1 when closed), for `sever()`. libpq closes its own descriptor when the server goes
    /// away, and the number may then be reused at once by anything in the process (an HTTP
    /// connection of another component); shutting that number down would cut the wrong socket.
    /// The duplicate stays open, under the lock, until `close()`, so a sever only ever reaches
    /// this connection's socket.
    private let socket = Mutex<Int32>(-1)
    /// Set by `sever()`: the connection is never reused.
    private let severed = Atomic<Bool>(false)
    private let answerCount = Atomic<UInt64>(0)
    private let serverPID = Atomic<Int32>(0)
    /// `PostgresConfiguration.answerTimeoutMs` of the connection.
    private let answerTimeoutMs: Int?
    /// Whether a statement is waiting for the server's answer now (set around the blocking call).
    private let waiting = Atomic<Bool>(false)
    /// Set when the answer deadline severed the connection, so that the error says why.
    private let silenceSevered = Atomic<Bool>(false)
    /// Where answer deadlines fire (`sever()` only shuts a socket down: it never blocks).
    private static let deadlineQueue = DispatchQueue(label: "callwindow.postgres.answer-deadline")

    /// `host:port/database` of the server; never the password.
    public let endpoint: String

    /// Where cancel requests (a blocking round trip to the server) are sent from.
    private static let cancelQueue = DispatchQueue(label: "callwindow.postgres.cancel")

    private init(endpoint: String, answerTimeoutMs: Int?) {
        self.endpoint = endpoint
        self.answerTimeoutMs = answerTimeoutMs
        queue = DispatchQueue(label: "callwindow.postgres.connection")
    }

    deinit {
        cancelHandle.withLock { $0 = nil }
        if let handle { PQfinish(handle) }
        Self.closeSocket(socket)
    }

    /// Closes the duplicate descriptor (after `PQfinish`, so that the socket closes with it).
    private static func closeSocket(_ socket: borrowing Mutex<Int32>) {
        socket.withLock { descriptor in
            if descriptor >= 0 { _ = closeDescriptor(descriptor) }
            descriptor = -1
        }
    }

    /// Opens a connection; errors name host, port and database but never the password.
    public static func connect(_ configuration: PostgresConfiguration) async throws -> PostgresConnection {
        let connection = PostgresConnection(endpoint: configuration.endpoint, answerTimeoutMs: configuration.answerTimeoutMs)
        try await connection.onQueue { () throws(PostgresError) in try connection.open(configuration) }
        return connection
    }

    // MARK: Statements

    /// Runs one statement with bound parameters (`$1`, `$2`, …) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: any PostgresEncodable...) async throws -> PostgresRows {
        try await query(sql, parameters: parameters)
    }

    /// Runs one statement with bound parameters (`$1`, `$2`, …) and returns its rows.
    @discardableResult
    public func query(_ sql: String, parameters: [any PostgresEncodable]) async throws -> PostgresRows {
        try await cancellable {
            try await self.onQueue { () throws(PostgresError) in try self.execute(sql, parameters) }
        }
    }

    /// Runs one statement and returns the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ parameters: any PostgresEncodable...) async throws -> Int {
        try await query(sql, parameters: parameters).affectedRows
    }

    /// Runs a parameterless script of one or more statements (migrations), in the simple protocol.
    public func executeScript(_ sql: String) async throws {
        try await cancellable {
            try await self.onQueue { () throws(PostgresError) in
                let handle = try self.liveHandle()
                _ = try self.check(self.withAnswerDeadline { PQexec(handle, sql) })
            }
        }
    }

    /// Runs `body` inside `BEGIN` … `COMMIT` (`BEGIN READ ONLY` when `readOnly`: the server
    /// then refuses every write); rolls back and rethrows when `body` throws.
    ///
    /// If the server ended the transaction in an aborted state (an error `body` swallowed),
    /// the commit is reported as an error rather than passing silently.
    ///
    /// `settings` (name and value, both fixed by the caller's code, never input) are set for the
    /// transaction only (`SET LOCAL`), in the same round trip as `BEGIN`.
    public func transaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        readOnly: Bool = false,
        settings: [(name: String, value: String)] = [],
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let begin = readOnly ? "BEGIN READ ONLY" : "BEGIN"
        if settings.isEmpty {
            try await execute(begin)
        } else {
            try await executeScript(([begin] + settings.map { "SET LOCAL \($0.name) = \($0.value)" }).joined(separator: "; "))
        }
        let value: T
        do {
            value = try await body(self)
        } catch {
            _ = try? await execute("ROLLBACK")
            throw error
        }
        let tag = try await query("COMMIT").commandTag
        if tag != "COMMIT" {
            throw PostgresError(code: .server, message: "the transaction was rolled back by the server (an earlier statement in it failed)", sqlState: "25P02")
        }
        return value
    }

    /// Bulk-loads rows with `COPY … FROM STDIN` (text format); returns the number of rows copied.
    ///
    /// `sql` is the COPY statement, e.g. `COPY t (a, b) FROM STDIN`; each row holds one value
    /// per column in text form, `nil` for NULL.
    @discardableResult
    public func copyFrom<Rows: Sequence & Sendable>(_ sql: String, rows: Rows) async throws -> Int
    where Rows.Element == [String?] {
        try await cancellable {
            try await self.onQueue { () throws(PostgresError) in try self.copy(sql, rows) }
        }
    }

    // MARK: LISTEN / NOTIFY

    /// Subscribes this connection to `channel`.
    public func listen(_ channel: String) async throws {
        try await execute("LISTEN " + Self.quoteIdentifier(channel))
    }

    /// Unsubscribes this connection from `channel`.
    public func unlisten(_ channel: String) async throws {
        try await execute("UNLISTEN " + Self.quoteIdentifier(channel))
    }

    /// Sends a notification (through `pg_notify`, so channel and payload are bound parameters).
    public func notify(_ channel: String, payload: String = "") async throws {
        try await execute("SELECT pg_notify($1, $2)", channel, payload)
    }

    /// Waits up to `timeout` (real time: an I/O timeout) for the next notification on a channel
    /// this connection listens to.
    ///
    /// Sleeps in `poll(2)` on the connection's socket and on a wake-up pipe — it never queries
    /// the server while waiting, and cancelling the task wakes the poll at once. Returns `nil`
    /// on timeout; throws `CancellationError` when the task is cancelled.
    public func nextNotification(timeout: Duration) async throws -> PostgresNotification? {
        // A zero timeout only takes what has arrived: it never polls, so it needs no wake-up pipe.
        let cancelled = CancelFlag(wakeable: timeout > .zero)
        defer { cancelled.close() }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, timeout.nanoseconds))
        return try await withTaskCancellationHandler {
            try await onQueue { () throws(PostgresError) -> PostgresNotification? in
                let handle = try self.liveHandle()
                while true {
                    if !self.notifications.isEmpty { return self.notifications.removeFirst() }
                    let now = DispatchTime.now().uptimeNanoseconds
                    if now >= deadline || cancelled.isSet { return nil }
                    // Without a wake-up pipe (no descriptor left), short slices notice cancellation.
                    let cap: UInt64 = cancelled.wakeDescriptor < 0 ? 100 : 60_000
                    let slice = Int32(min((deadline - now) / 1_000_000 + 1, cap))
                    var descriptors = [
                        pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0),
                        pollfd(fd: cancelled.wakeDescriptor, events: Int16(POLLIN), revents: 0),
                    ]
                    let ready = poll(&descriptors, 2, slice)
                    if ready > 0, descriptors[0].revents != 0 {
                        if PQconsumeInput(handle) == 0 {
                            throw self.connectionError(handle, lost: true)
                        }
                        self.drainNotifications(handle)
                    }
                }
            }
        } onCancel: {
            cancelled.set()
        }.flatMapCancellation(cancelled)
    }

    /// The next notification, or `nil` once `ending` returns (a deadline, a reload), whichever
    /// comes first. One already received is returned at once, however soon `ending` returns; one
    /// taken off the connection in the instant `ending` returned is returned too, never dropped.
    /// An error thrown by `ending` (cancellation) is thrown.
    public func nextNotification(orWhen ending: @escaping @Sendable () async throws -> Void) async throws -> PostgresNotification? {
        if let received = try await nextNotification(timeout: .zero) { return received }
        return try await withThrowingTaskGroup(of: PostgresNotification?.self) { group in
            group.addTask { try await self.nextNotification(timeout: .seconds(86_400)) }
            group.addTask {
                try await ending()
                return nil
            }
            let first: PostgresNotification?
            do {
                first = try await group.next() ?? nil
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            if let first { return first }
            // `ending` returned first; the wait, cancelled now, may have taken one in that instant.
            var taken: PostgresNotification?
            while true {
                do {
                    guard let result = try await group.next() else { break }
                    if taken == nil { taken = result }
                } catch {
                    continue  // the wait ended by the cancellation
                }
            }
            return taken
        }
    }

    // MARK: Health

    /// How many results the server has sent back so far (statements answered, errors
    /// included): a watchdog that sees it stand still knows the connection made no progress.
    public var answers: UInt64 { answerCount.load(ordering: .relaxed) }

    /// The process id of the server's backend for this connection (`pg_backend_pid()`), to ask
    /// about it from another connection; 0 before it is open.
    public var backendPID: Int32 { serverPID.load(ordering: .relaxed) }

    /// Shuts the connection's socket down from any thread, at once: a statement or a wait
    /// blocked on it fails with `connectionLost`, even when the peer answers nothing at all (a
    /// network or proxy that black-holes the traffic, which TCP alone may take minutes to
    /// notice, or never, behind a proxy that still acknowledges). The connection is not usable
    /// afterwards; `close()` still frees it.
    public func sever() {
        severed.store(true, ordering: .relaxed)
        socket.withLock { descriptor in
            if descriptor >= 0 { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    /// libpq's own descriptor of the socket (-1 once libpq dropped the connection), for tests.
    var libpqSocket: Int32 {
        get async { (try? await onQueue { () throws(PostgresError) -> Int32 in self.handle.map { PQsocket($0) } ?? -1 }) ?? -1 }
    }

    /// The descriptor `sever()` shuts down (-1 once closed), for tests.
    var severDescriptor: Int32 { socket.withLock { $0 } }

    /// False once the connection is known to be broken (closed, or the server went away).
    public var isUsable: Bool {
        get async {
            if cancelRequested.withLock({ $0 }) || severed.load(ordering: .relaxed) { return false }
            return (try? await onQueue { () throws(PostgresError) -> Bool in self.probe() }) ?? false
        }
    }

    /// Closes the connection; later calls fail with `connectionLost`.
    public func close() async {
        _ = try? await onQueue { () throws(PostgresError) in
            self.cancelHandle.withLock { $0 = nil }
            if let handle = self.handle { PQfinish(handle) }
            self.handle = nil
            Self.closeSocket(self.socket)
        }
    }

    /// Quotes an identifier (a channel or table name) for the rare statements that need one.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }

    // MARK: - Running on the connection's queue

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws(PostgresError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: try body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Runs `operation`; if the task is cancelled meanwhile, asks the server to cancel the statement
    /// (unless `PostgresShield` is active).
    private func cancellable<T: Sendable>(_ operation: @Sendable () async throws -> T) async throws -> T {
        // A shielded statement runs to its end whatever happens to the task (`PostgresShield`),
        // unless its connection has gone silent: once the task is cancelled (a shutdown past its
        // grace period), an answer still missing after `cancelAnswerLimit` will not come.
        if PostgresShield.isActive {
            return try await withTaskCancellationHandler(operation: operation) { self.severIfSilent() }
        }
        return try await withTaskCancellationHandler(operation: operation) {
            self.cancelRequested.withLock { $0 = true }
            // PQcancel waits for the server: never on the global queue, which on Linux is the
            // pool Swift's tasks run on.
            Self.cancelQueue.async {
                self.cancelHandle.withLock { $0?.requestCancel() }
            }
            // The server's answer to the cancel comes on this connection.
            self.severIfSilent()
        }
    }

    /// Severs the connection if, `cancelAnswerLimit` from now, a statement is still waiting on it
    /// and no answer came in between: a connection dead without a word (a black-holing network:
    /// the cancel reached the server, or did not, and nothing comes back). Both are read on the
    /// connection's own counters, set where libpq returns, so a task that is slow to resume after
    /// its answer (a busy thread pool) is not mistaken for a silent connection.
    private func severIfSilent() {
        let seen = answerCount.load(ordering: .relaxed)
        Self.deadlineQueue.asyncAfter(deadline: .now() + Self.cancelAnswerLimit) { [weak self] in
            guard let self, self.waiting.load(ordering: .relaxed), self.answerCount.load(ordering: .relaxed) == seen else { return }
            self.sever()
        }
    }

    /// How long a cancelled statement (or a shielded one whose task was cancelled) may wait for
    /// the server's answer before its connection is severed.
    static let cancelAnswerLimit = DispatchTimeInterval.seconds(5)

    private func open(_ configuration: PostgresConfiguration) throws(PostgresError) {
        // Later entries win: the connection string (expanded from `dbname`) overrides these defaults.
        var defaults = [("connect_timeout", String(configuration.connectTimeoutSeconds)),
                        ("application_name", configuration.applicationName), ("client_encoding", "UTF8")]
        defaults += PostgresConfiguration.keepalives
        let settings = [configuration.statementTimeoutMs.map { "-c statement_timeout=\($0)" },
                        configuration.idleSessionTimeoutMs.map { "-c idle_session_timeout=\($0)" },
                        configuration.idleInTransactionTimeoutMs.map { "-c idle_in_transaction_session_timeout=\($0)" },
                        configuration.jit.map { "-c jit=\($0 ? "on" : "off")" }].compactMap { $0 }
        if !settings.isEmpty { defaults.append(("options", settings.joined(separator: " "))) }
        let keywords = defaults.map(\.0) + ["dbname"]
        let values = defaults.map(\.1) + [configuration.conninfo]
        let handle = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection", endpoint: endpoint)
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let host = PQhost(handle).map { String(cString: $0) } ?? "?"
            let port = PQport(handle).map { String(cString: $0) } ?? "?"
            let database = PQdb(handle).map { String(cString: $0) } ?? "?"
            let raw = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines
            PQfinish(handle)
            let message = PostgresConfiguration.redact(raw, conninfo: configuration.conninfo)
                .replacingAll("\n", with: " ").replacingAll("\t", with: "")
            throw PostgresError(
                code: .connectionFailed,
                message: "could not connect to database \"\(database)\" at \(host):\(port): \(message)",
                endpoint: "\(host):\(port)/\(database)"
            )
        }
        // Server notices (e.g. "schema already exists, skipping") would go to stderr; drop them.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        self.handle = handle
        let libpqSocket = PQsocket(handle)
        socket.withLock { $0 = libpqSocket >= 0 ? fcntl(libpqSocket, F_DUPFD_CLOEXEC, 0) : -1 }
        serverPID.store(PQbackendPID(handle), ordering: .relaxed)
        let cancel = PQgetCancel(handle).map(CancelHandle.init)
        cancelHandle.withLock { $0 = cancel }
    }

    private func liveHandle() throws(PostgresError) -> OpaquePointer {
        guard let handle else {
            throw PostgresError(code: .connectionLost, message: "the connection is closed", endpoint: endpoint)
        }
        return handle
    }

    private func execute(_ sql: String, _ parameters: [any PostgresEncodable]) throws(PostgresError) -> PostgresRows {
        let handle = try liveHandle()
        var types: [Oid] = []
        var lengths: [Int32] = []
        var starts: [Int] = []
        var data: [UInt8] = []
        types.reserveCapacity(parameters.count)
        for parameter in parameters {
            types.append(type(of: parameter).postgresType)
            if parameter.isPostgresNull {
                starts.append(-1)
                lengths.append(0)
            } else {
                let start = data.count
                try parameter.encode(into: &data)
                starts.append(start)
                lengths.append(Int32(data.count - start))
            }
        }
        data.append(0)  // never empty, so a zero-length value still has an address
        let formats = [Int32](repeating: 1, count: parameters.count)
        let result = data.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            let values: [UnsafePointer<CChar>?] = starts.map { start in
                start < 0 ? nil : (base + start).assumingMemoryBound(to: CChar.self)
            }
            return withAnswerDeadline { PQexecParams(handle, sql, Int32(parameters.count), types, values, lengths, formats, 1) }
        }
        return try check(result)
    }

    /// Runs `call` (one blocking round trip) marked as waiting for an answer (what
    /// `severIfSilent` reads), with the connection's answer deadline armed: if no answer has come
    /// by then, the connection is severed and the call returns what libpq makes of a broken
    /// connection.
    private func withAnswerDeadline(_ call: () -> OpaquePointer?) -> OpaquePointer? {
        waiting.store(true, ordering: .relaxed)
        defer { waiting.store(false, ordering: .relaxed) }
        guard let answerTimeoutMs else { return call() }
        let deadline = DispatchWorkItem { [weak self] in
            guard let self else { return }
            self.silenceSevered.store(true, ordering: .relaxed)
            self.sever()
        }
        Self.deadlineQueue.asyncAfter(deadline: .now() + .milliseconds(answerTimeoutMs), execute: deadline)
        defer { deadline.cancel() }
        return call()
    }

    private func copy<Rows: Sequence>(_ sql: String, _ rows: Rows) throws(PostgresError) -> Int where Rows.Element == [String?] {
        let handle = try liveHandle()
        guard let start = PQexec(handle, sql) else { throw connectionError(handle, lost: true) }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try check(start)
            throw PostgresError(code: .protocolViolation, message: "the statement given to copyFrom is not a COPY … FROM STDIN")
        }
        PQclear(start)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 17)
        var failure: PostgresError?
        func flush() {
            guard failure == nil, !buffer.isEmpty else { return }
            let sent = buffer.withUnsafeBufferPointer { pointer in
                pointer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            if sent != 1 { failure = connectionError(handle, lost: true) }
            buffer.removeAll(keepingCapacity: true)
        }
        for row in rows {
            for (index, field) in row.enumerated() {
                if index > 0 { buffer.append(0x09) }
                guard let field else {
                    buffer.append(contentsOf: [0x5C, 0x4E])  // \N
                    continue
                }
                for byte in field.utf8 {
                    switch byte {
                    case 0x5C: buffer.append(contentsOf: [0x5C, 0x5C])
                    case 0x09: buffer.append(contentsOf: [0x5C, 0x74])
                    case 0x0A: buffer.append(contentsOf: [0x5C, 0x6E])
                    case 0x0D: buffer.append(contentsOf: [0x5C, 0x72])
                    default: buffer.append(byte)
                    }
                }
            }
            buffer.append(0x0A)
            if buffer.count >= 1 << 16 { flush() }
            if failure != nil { break }
        }
        flush()
        if let failure {
            _ = PQputCopyEnd(handle, "client failed while sending COPY data")
            while let result = PQgetResult(handle) { PQclear(result) }
            throw failure
        }
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError(handle, lost: true) }
        var copied = 0
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            do {
                let rows = try check(result)
                copied = rows.affectedRows
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        return copied
    }

    /// Turns a libpq result into rows or a `PostgresError`, and collects pending notifications.
    private func check(_ result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        let handle = try liveHandle()
        defer { drainNotifications(handle) }
        guard let result else { throw connectionError(handle, lost: true) }
        // An error libpq made up for a broken connection is no answer from the server.
        if PQstatus(handle) == CONNECTION_OK { answerCount.add(1, ordering: .relaxed) }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY {
            return PostgresRows(taking: result)
        }
        defer { PQclear(result) }
        if status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR {
            throw serverError(result, handle)
        }
        throw PostgresError(code: .protocolViolation, message: "unexpected result status \(status.rawValue)")
    }

    private func serverError(_ result: OpaquePointer, _ handle: OpaquePointer) -> PostgresError {
        func field(_ code: UInt8) -> String? {
            PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
        }
        let sqlState = field(UInt8(ascii: "C"))
        let lost = PQstatus(handle) == CONNECTION_BAD
        // libpq's own account of a connection the answer deadline severed says only that it broke.
        if sqlState == nil && lost && silenceSevered.load(ordering: .relaxed) { return connectionError(handle, lost: true) }
        var message = field(UInt8(ascii: "M")) ?? String(cString: PQresultErrorMessage(result)).trimmingTrailingNewlines
        if message.isEmpty { message = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines }
        return PostgresError(
            code: sqlState == nil && lost ? .connectionLost : .server,
            message: message,
            sqlState: sqlState,
            detail: field(UInt8(ascii: "D")),
            hint: field(UInt8(ascii: "H")),
            schema: field(UInt8(ascii: "s")),
            table: field(UInt8(ascii: "t")),
            column: field(UInt8(ascii: "c")),
            constraint: field(UInt8(ascii: "n")),
            endpoint: lost ? endpoint : nil
        )
    }

    private func connectionError(_ handle: OpaquePointer, lost: Bool) -> PostgresError {
        if silenceSevered.load(ordering: .relaxed), let answerTimeoutMs {
            return PostgresError(
                code: .connectionLost,
                message: "no answer from the server within \(answerTimeoutMs) ms: the connection was severed", endpoint: endpoint)
        }
        let message = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines
            .replacingAll("\n", with: " ").replacingAll("\t", with: "")
        return PostgresError(code: lost ? .connectionLost : .connectionFailed, message: message.isEmpty ? "the connection broke" : message, endpoint: endpoint)
    }

    private func drainNotifications(_ handle: OpaquePointer) {
        while let notify = PQnotifies(handle) {
            notifications.append(PostgresNotification(
                channel: String(cString: notify.pointee.relname),
                payload: notify.pointee.extra.map { String(cString: $0) } ?? "",
                processID: notify.pointee.be_pid
            ))
            PQfreemem(notify)
        }
    }

    /// Checks an idle connection without a round trip: reads whatever the server sent
    /// (a shutdown message, EOF, notifications) and reports whether the connection still works.
    private func probe() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        // A server that shut down sends an error message and then closes: keep reading while
        // the socket is readable, so the end-of-file is seen too (a few rounds at most).
        for _ in 0..<8 {
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            if descriptor.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { return false }
            if PQconsumeInput(handle) == 0 { return false }
            drainNotifications(handle)
            if PQstatus(handle) != CONNECTION_OK { return false }
        }
        return PQstatus(handle) == CONNECTION_OK
    }
}

extension PostgresRows {
    /// The command tag (`INSERT 0 1`, `COMMIT`, `ROLLBACK`, …) of the statement.
    public var commandTag: String { tag }
}

/// Owns a libpq `PGcancel` and frees it once.
///
/// Sendable because libpq documents `PQcancel` as safe to call from any thread, and the
/// handle is only ever used under the connection's `cancelHandle` lock.
private final class CancelHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { PQfreeCancel(pointer) }
    func requestCancel() {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(pointer, &buffer, Int32(buffer.count))
    }
}

/// A flag set from a cancellation handler and read on the connection's queue, with a pipe whose
/// read end a `poll(2)` watches so that setting the flag wakes the poll at once.
private final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// The pipe's descriptors (read, write); `nil` without one, or once closed.
    private let pipe = Mutex<(read: Int32, write: Int32)?>(nil)
    /// Read end to poll (-1: none, `poll` then ignores the entry).
    let wakeDescriptor: Int32

    /// A flag; with a wake-up pipe when `wakeable` and a pipe can be made.
    init(wakeable: Bool) {
        var descriptors: [Int32] = [-1, -1]
        #if canImport(Glibc)
        let made = wakeable && Glibc.pipe(&descriptors) == 0
        #else
        let made = wakeable && Darwin.pipe(&descriptors) == 0
        #endif
        if made {
            pipe.withLock { $0 = (descriptors[0], descriptors[1]) }
            wakeDescriptor = descriptors[0]
        } else {
            wakeDescriptor = -1
        }
    }

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() {
        value.store(true, ordering: .releasing)
        pipe.withLock { descriptors in
            guard let descriptors else { return }
            var byte: UInt8 = 1
            _ = write(descriptors.write, &byte, 1)
        }
    }

    /// Closes the pipe; a later `set()` only sets the flag. Called once the wait has returned.
    func close() {
        pipe.withLock { descriptors in
            if let descriptors {
                _ = closeDescriptor(descriptors.read)
                _ = closeDescriptor(descriptors.write)
            }
            descriptors = nil
        }
    }
}

private func closeDescriptor(_ descriptor: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(descriptor)
    #else
    Darwin.close(descriptor)
    #endif
}

extension Optional where Wrapped == PostgresNotification {
    /// Maps a wait that ended because of cancellation to `CancellationError`.
    fileprivate func flatMapCancellation(_ flag: CancelFlag) throws -> PostgresNotification? {
        if self == nil, flag.isSet { throw CancellationError() }
        return self
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

private func withCStringArray<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicates: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    return body(duplicates.map { $0.map { UnsafePointer($0) } } + [nil])
}
