import Foundation
public import Logging
public import Planning
import CallRecordAPI
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization

/// A faithful local fake of the call-personalisation API (shared/API.md): the same paths, bodies,
/// validations, status codes and limits, plus injectable faults and a record of what it accepted.
///
/// Its time comes from the injected `WallClock` (validation, token lifetimes, limits, storms),
/// so in-process tests can run it on a `ManualClock`. Tokens and keys are never logged; tokens
/// are identified by their fingerprint (stats, record file).
///
/// Endpoints: `POST /clients/{id}/token`, `POST /clients/{id}/dynamic_call_record` (v1),
/// `POST /v2/clients/{id}/dynamic_call_record`, `POST /v2/clients/{id}/dynamic_call_records`
/// (batch), `GET /v2|v3/clients/{id}/dynamic_call_records?batchId=`, `GET /clients/{id}/labels`,
/// and the controls `POST /sandbox/revoke`, `POST /sandbox/storm`, `GET /sandbox/stats`.
public final class SandboxServer: Sendable {
    /// What the sandbox serves.
    public let configuration: SandboxConfiguration
    /// Address to bind. Default 127.0.0.1.
    public let host: String
    /// Port to bind; 0 picks a free one (learn it from `run(onListening:)`). Default 8089.
    public let port: Int

    let clock: any WallClock
    let logger: Logger
    let clients: [UUID: ClientInfo]
    /// The same, by lowercase id text: the path parameter is looked up without parsing a UUID.
    let clientsByText: [String: ClientInfo]
    /// Every label of every client, so a record using another client's label is told so.
    let allLabels: [UUID: LabelInfo]
    let state: Mutex<SandboxState>
    let batches: BatchStore
    let recordFile: RecordFile?
    /// `--issued-tokens-file`: every token minted, one per line (secrets; for test harnesses).
    let issuedTokensFile: RecordFile?
    let plan: FaultPlan
    let held = HeldConnections()
    let validator = RecordValidator()

    /// Creates a sandbox; nothing is bound until `run`.
    ///
    /// - Parameters:
    ///   - recordFile: path of the record file (appended to), or `nil` for none.
    ///   - issuedTokensFile: path of a file that gets every minted token, one per line, so a
    ///     reliability suite can search its logs and database dumps for them; `nil` (the
    ///     default) for none. The file holds secrets: only for sandboxes under test.
    ///   - logger: where the server logs (never tokens or keys); default: warnings to stderr, so
    ///     stdout stays free for the `listening on` line.
    public init(
        configuration: SandboxConfiguration,
        clock: any WallClock,
        recordFile: String? = nil,
        issuedTokensFile: String? = nil,
        host: String = "127.0.0.1",
        port: Int = 8089,
        logger: Logger? = nil
    ) throws {
        self.configuration = configuration
        self.clock = clock
        self.host = host
        self.port = port
        self.logger = logger ?? {
            var logger = Logger(label: "callwindow.sandbox") { StreamLogHandler.standardError(label: $0) }
            logger.logLevel = .warning
            return logger
        }()
        var clients: [UUID: ClientInfo] = [:]
        for client in configuration.clients {
            clients[client.clientAccountID] = ClientInfo(client)
        }
        self.clients = clients
        clientsByText = Dictionary(uniqueKeysWithValues: clients.values.map { ($0.idText, $0) })
        allLabels = clients.values.reduce(into: [:]) { all, client in all.merge(client.labels) { first, _ in first } }
        plan = FaultPlan(faults: configuration.faults, startedAt: clock.now())
        state = Mutex(SandboxState(limits: configuration.limits, plan: plan))
        batches = BatchStore(capacity: 100_000)
        self.recordFile = try recordFile.map { try RecordFile(path: $0) }
        self.issuedTokensFile = try issuedTokensFile.map { try RecordFile(path: $0) }
    }

    /// Serves until the task is cancelled or a graceful shutdown is triggered (e.g. when run as
    /// part of a `ServiceGroup`). `onListening` is called once with the bound port. Pushes held by
    /// the timeout fault are released (their connections closed) when the server stops.
    public func run(onListening: (@Sendable (Int) async -> Void)? = nil) async throws {
        let router = Router(context: SandboxRequestContext.self)
        addRoutes(to: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), backlog: 1024),
            onServerRunning: { channel in
                await onListening?(channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await app.run()
            } onGracefulShutdown: {
                self.held.closeAll()
            }
        } onCancel: {
            self.held.closeAll()
        }
    }

    /// Runs the server for the duration of `body`, which gets the bound port, then shuts it down
    /// gracefully (also when `body` throws). For tests and benchmarks.
    public func withRunning<T: Sendable>(_ body: @Sendable (_ port: Int) async throws -> T) async throws -> T {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = RunService(server: self) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(services: [service], logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { continuation.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                // The server stopped before listening: surface its error.
                try await tasks.waitForAll()
                throw SandboxError(code: .server, message: "the sandbox stopped before it was listening")
            }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(port))
            } catch {
                result = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }

    /// A copy of the counters (`GET /sandbox/stats`).
    public func stats() -> SandboxStats {
        state.withLock { $0.snapshot() }
    }

    /// Starts a rate-limit storm now (on the sandbox's clock) lasting `milliseconds`: every push
    /// is answered 429 until it ends (`POST /sandbox/storm`).
    public func startStorm(milliseconds: Int64) {
        let now = clock.now()
        state.withLock { $0.startStorm(now: now, milliseconds: milliseconds) }
    }

    /// Ends a storm started with `startStorm` at once (a fault plan's storms are not affected).
    public func endStorm() {
        state.withLock { $0.endStorm() }
    }

    /// Makes every token (`fingerprint == nil`) or the tokens with `fingerprint` answer 401 from
    /// now on (`POST /sandbox/revoke`); returns how many were revoked.
    @discardableResult
    public func revoke(fingerprint: String? = nil) -> Int {
        state.withLock { $0.revoke(fingerprint: fingerprint) }
    }
}

/// `run` as a `Service`, so `withRunning` can stop the server gracefully.
private struct RunService: Service {
    let server: SandboxServer
    let onListening: @Sendable (Int) async -> Void

    func run() async throws {
        try await server.run(onListening: onListening)
    }
}

/// The request context: Hummingbird's basics plus the connection, which the reset and timeout
/// faults need (to close it, or to hold it without an answer).
struct SandboxRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Connections held open by the timeout fault, closed when the server stops.
final class HeldConnections: Sendable {
    private let state = Mutex<(stopped: Bool, channels: [ObjectIdentifier: any Channel])>((false, [:]))

    /// Holds `channel` until it is closed — by the client giving up or the server stopping.
    func hold(_ channel: any Channel) async {
        let id = ObjectIdentifier(channel)
        let stopped = state.withLock { state in
            if !state.stopped { state.channels[id] = channel }
            return state.stopped
        }
        if stopped {
            channel.close(promise: nil)
        }
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.close(promise: nil)
        }
        _ = state.withLock { $0.channels.removeValue(forKey: id) }
    }

    /// Closes every held connection, and any held from now on.
    func closeAll() {
        let channels = state.withLock { state in
            state.stopped = true
            return Array(state.channels.values)
        }
        for channel in channels {
            channel.close(promise: nil)
        }
    }
}

/// Batch statuses, answered by the status endpoint; the oldest are forgotten beyond `capacity`.
final class BatchStore: Sendable {
    struct Batch: Sendable {
        let clientAccountID: UUID
        let statuses: [BatchRecordStatus]
    }

    private let state: Mutex<(batches: [UUID: Batch], order: [UUID], head: Int)>
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        state = Mutex(([:], [], 0))
    }

    func store(_ id: UUID, _ batch: Batch) {
        state.withLock { state in
            state.batches[id] = batch
            if state.order.count < capacity {
                state.order.append(id)
            } else {
                state.batches[state.order[state.head]] = nil
                state.order[state.head] = id
                state.head = (state.head + 1) % capacity
            }
        }
    }

    func batch(_ id: UUID) -> Batch? {
        state.withLock { $0.batches[id] }
    }
}
