import Config
import Foundation
import HTTPTypes
import Hummingbird
import Store
public import Logging
public import Postgres
public import Prometheus
public import Scheduler
public import ServiceLifecycle

/// `/metrics` (Prometheus text), `/healthz` (the process runs), `/readyz` (database reachable
/// and planner alive) and the read-only dashboard on the configured host and port; port 0 picks
/// a free one and logs it. On a host other than loopback it refuses to start without a bearer
/// token, which every path but /healthz and /readyz then requires.
public struct OperationsServer: Service {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let database: PostgresPool
    /// Epoch ms of the planner's last completed cycle (0 before the first).
    let plannerLastCycleAt: @Sendable () -> Int64
    /// The planner counts as alive if its last cycle ended within this many milliseconds.
    let plannerStaleAfterMs: Int64
    let now: @Sendable () -> Int64
    let dashboard: Dashboard?
    let authToken: String?
    let onListening: @Sendable (Int) -> Void
    let logger: Logger

    /// A server on `host:port` exposing `registry`, checking `database` and `planner` for readiness.
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, database: PostgresPool, planner: Leader,
        plannerStaleAfterMs: Int64, now: @escaping @Sendable () -> Int64, dashboard: Dashboard? = nil, authToken: String? = nil,
        logger: Logger
    ) {
        self.init(host: host, port: port, registry: registry, database: database, plannerLastCycleAt: { planner.lastCycleAt },
                  plannerStaleAfterMs: plannerStaleAfterMs, now: now, dashboard: dashboard, authToken: authToken, logger: logger)
    }

    /// A server whose readiness reads the planner's last cycle from `plannerLastCycleAt`;
    /// `onListening` is told the bound port once it listens.
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, database: PostgresPool,
        plannerLastCycleAt: @escaping @Sendable () -> Int64, plannerStaleAfterMs: Int64, now: @escaping @Sendable () -> Int64,
        dashboard: Dashboard? = nil, authToken: String? = nil, onListening: @escaping @Sendable (Int) -> Void = { _ in },
        logger: Logger
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.database = database
        self.plannerLastCycleAt = plannerLastCycleAt
        self.plannerStaleAfterMs = plannerStaleAfterMs
        self.now = now
        self.dashboard = dashboard
        self.authToken = authToken
        self.onListening = onListening
        self.logger = logger
    }

    /// Serves until the service group shuts down. Throws before binding when `host` is not a
    /// loopback address and no bearer token is set.
    public func run() async throws {
        guard authToken?.isEmpty == false || Configuration.HTTP.isLoopback(host) else {
            throw CallWindowError("refusing to serve on \(host): http.host is not a loopback address and no bearer token is set (http.auth_token_env)")
        }
        let router = Router()
        router.add(middleware: ServerTimingMiddleware())
        if let authToken, !authToken.isEmpty {
            router.add(middleware: BearerTokenMiddleware(token: authToken))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        let readiness = Readiness(database: database, plannerLastCycleAt: plannerLastCycleAt, staleAfterMs: plannerStaleAfterMs, now: now)
        router.get("/readyz") { _, _ -> Response in
            let problems = await readiness.problems()
            let body = problems.isEmpty ? "ready\n" : problems.joined(separator: "; ") + "\n"
            return Response(status: problems.isEmpty ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        dashboard?.register(on: router)
        let (logger, onListening) = (self.logger, self.onListening)
        let paths = dashboard == nil ? "/metrics /healthz /readyz" : "/ /audit /metrics /healthz /readyz"
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("operations endpoint listening", metadata: ["url": "http://\(host):\(bound)", "paths": "\(paths)"])
                onListening(bound)
            },
            logger: logger
        )
        do {
            try await app.runService()
        } catch {
            throw ListenError(description: "cannot serve /metrics on \(host):\(port) (http.host, http.port): \(error); choose another port or 0 for a free one")
        }
    }

    struct ListenError: Error, CustomStringConvertible {
        let description: String
    }
}

/// Adds `Server-Timing: app;dur=<ms>` to every response: the time the server spent on it until the
/// response (its headers) was ready. A duration metric, read from the monotonic clock; `bench
/// dashboard` reports it, and a browser's developer tools show it.
struct ServerTimingMiddleware<Context: RequestContext>: RouterMiddleware {
    static var name: HTTPField.Name { HTTPField.Name("Server-Timing")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1_000 + Double(elapsed.components.attoseconds) / 1e15
        response.headers[Self.name] = String(format: "app;dur=%.3f", ms)
        return response
    }
}
