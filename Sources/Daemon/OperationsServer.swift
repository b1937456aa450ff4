import Foundation
import Hummingbird
import Store
public import Logging
public import Postgres
public import Prometheus
public import Scheduler
public import ServiceLifecycle

/// `/metrics` (Prometheus text), `/healthz` (the process runs) and `/readyz` (database reachable
/// and planner alive) on the configured host and port; port 0 picks a free one and logs it.
public struct OperationsServer: Service {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let database: PostgresPool
    let planner: Leader
    /// The planner counts as alive if its last cycle ended within this many milliseconds.
    let plannerStaleAfterMs: Int64
    let now: @Sendable () -> Int64
    let logger: Logger

    /// A server on `host:port` exposing `registry`, checking `database` and `planner` for readiness.
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, database: PostgresPool, planner: Leader,
        plannerStaleAfterMs: Int64, now: @escaping @Sendable () -> Int64, logger: Logger
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.database = database
        self.planner = planner
        self.plannerStaleAfterMs = plannerStaleAfterMs
        self.now = now
        self.logger = logger
    }

    /// Serves until the service group shuts down.
    public func run() async throws {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            var problems: [String] = []
            do {
                try await SchemaCheck.ping(database)
            } catch {
                problems.append("database unreachable")
            }
            let last = planner.lastCycleAt
            if last == 0 || now() - last > plannerStaleAfterMs {
                problems.append("planner has not completed a cycle recently")
            }
            let body = problems.isEmpty ? "ready\n" : problems.joined(separator: "; ") + "\n"
            return Response(status: problems.isEmpty ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let logger = self.logger
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                logger.info("operations endpoint listening", metadata: [
                    "url": "http://\(host):\(channel.localAddress?.port ?? port)", "paths": "/metrics /healthz /readyz",
                ])
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
