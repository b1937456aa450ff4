import Synchronization

/// A small pool of connections with a bounded size.
///
/// Connections are opened lazily up to `maxConnections`; callers beyond that wait in line.
/// A connection that broke (server restart, network drop) is detected when it is handed out
/// or returned, closed, and replaced by a fresh one on the next use — so after a restart the
/// next statement on the pool succeeds.
public final class PostgresPool: Sendable {
    private enum Grant: Sendable {
        case connection(PostgresConnection)
        /// Permission to open a new connection (a slot was freed).
        case slot
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    private let configuration: PostgresConfiguration
    /// Most connections the pool keeps open at once.
    public let maxConnections: Int
    private let state = Mutex(State())

    /// Creates a pool; no connection is opened until the first use.
    public init(configuration: PostgresConfiguration, maxConnections: Int = 4) {
        self.configuration = configuration
        self.maxConnections = max(1, maxConnections)
    }

    /// `host:port/database` of the pool's server.
    public var endpoint: String { configuration.endpoint }

    /// Lends a connection to `body` for its duration.
    public func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            await release(connection)
            throw error
        }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: any PostgresEncodable...) async throws -> PostgresRows {
        try await withConnection { try await $0.query(sql, parameters: parameters) }
    }

    /// Runs one statement on a pooled connection and returns the number of affected rows.
    @discardableResult
    public func execute(_ sql: String, _ parameters: any PostgresEncodable...) async throws -> Int {
        try await withConnection { try await $0.query(sql, parameters: parameters).affectedRows }
    }

    /// Runs `body` in a transaction on a pooled connection.
    public func transaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.transaction { try await body($0) }
        }
    }

    /// Closes idle connections and refuses new work; connections in use close when returned.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: Self.closedError) }
        for connection in idle { await connection.close() }
    }

    /// Connections currently open (idle or lent).
    public var openConnections: Int { state.withLock { $0.open } }

    /// Connections lent out now (or being opened for a caller): 0 when no statement runs.
    public var connectionsInUse: Int { state.withLock { $0.open - $0.idle.count } }

    // MARK: - Internals

    private static let closedError = PostgresError(code: .poolClosed, message: "the connection pool has been closed")

    private func acquire() async throws -> PostgresConnection {
        while true {
            let grant = try await nextGrant()
            switch grant {
            case .connection(let connection):
                if await connection.isUsable { return connection }
                await connection.close()
                state.withLock { $0.open -= 1 }
                // Broken idle connection: loop and get another (or a slot).
            case .slot:
                do {
                    return try await PostgresConnection.connect(configuration)
                } catch {
                    freeSlot()
                    throw error
                }
            }
        }
    }

    /// The next connection or slot, or a place in line. The decision and the enqueueing happen
    /// under one lock: a connection released (or a slot freed) between "the pool is exhausted"
    /// and "wait in line" would otherwise go idle while its waiter sleeps forever.
    private func nextGrant() async throws -> Grant {
        let id: UInt64 = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        // A shielded caller waits its turn even when cancelled (`PostgresShield`).
        let shielded = PostgresShield.isActive
        if shielded { return try await waitForGrant(id: id, shielded: true) }
        return try await withTaskCancellationHandler {
            try await waitForGrant(id: id, shielded: false)
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func waitForGrant(id: UInt64, shielded: Bool) async throws -> Grant {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
            enum Immediate { case grant(Grant), queued, closed, cancelled }
            let immediate: Immediate = state.withLock { state in
                if state.closed { return .closed }
                if let connection = state.idle.popLast() { return .grant(.connection(connection)) }
                if state.open < maxConnections {
                    state.open += 1
                    return .grant(.slot)
                }
                // Checked under the lock: a cancellation handler that ran before the waiter
                // was enqueued found nothing to resume, so this is the only place to see it.
                if !shielded && Task.isCancelled { return .cancelled }
                state.waiters.append(Waiter(id: id, continuation: continuation))
                return .queued
            }
            switch immediate {
            case .grant(let grant): continuation.resume(returning: grant)
            case .queued: break
            case .closed: continuation.resume(throwing: Self.closedError)
            case .cancelled: continuation.resume(throwing: CancellationError())
            }
        }
    }

    private func release(_ connection: PostgresConnection) async {
        guard await connection.isUsable else {
            await connection.close()
            freeSlot()
            return
        }
        enum Action { case handOff(Waiter), keep, close }
        let action: Action = state.withLock { state in
            if state.closed {
                state.open -= 1
                return .close
            }
            if !state.waiters.isEmpty { return .handOff(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .keep
        }
        switch action {
        case .handOff(let waiter): waiter.continuation.resume(returning: .connection(connection))
        case .keep: break
        case .close: await connection.close()
        }
    }

    /// A connection went away: give its slot to a waiter, or shrink.
    private func freeSlot() {
        let waiter: Waiter? = state.withLock { state in
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .slot)
    }
}
