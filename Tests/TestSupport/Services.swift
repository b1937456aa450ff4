public import Logging
public import ServiceLifecycle

/// Runs `services` in one ServiceGroup while `body` runs, then shuts them down gracefully
/// whatever `body` did, and waits (at most `stopWithin`, real time) for them to end. `body`'s
/// failure is rethrown first, then a failure to stop.
public func withServices<T>(
    _ services: [any Service], logger: Logger, stopWithin: Duration = .seconds(60), _ body: () async throws -> T
) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services, logger: logger))
    let running = Task { try await group.run() }
    let outcome: Result<T, any Error>
    do {
        outcome = .success(try await body())
    } catch {
        outcome = .failure(error)
    }
    await group.triggerGracefulShutdown()
    let stopped: Result<Void, any Error>
    do {
        try await withTimeout(stopWithin, "the services to stop after a graceful shutdown") { try await running.value }
        stopped = .success(())
    } catch {
        stopped = .failure(error)
    }
    let value = try outcome.get()
    try stopped.get()
    return value
}
