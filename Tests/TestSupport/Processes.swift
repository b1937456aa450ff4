public import Foundation
@_exported public import Processes

/// The built `callwindow` binary (built by `swift build --build-tests`).
public var callwindowBinary: URL {
    if let path = ProcessInfo.processInfo.environment["CALLWINDOW_BINARY"], !path.isEmpty {
        return URL(fileURLWithPath: path)
    }
    return TestDatabase.packageRoot.appendingPathComponent(".build/debug/callwindow")
}

/// `scripts/pgcluster`, which starts private PostgreSQL clusters.
public var pgclusterScript: URL {
    if let path = ProcessInfo.processInfo.environment["CALLWINDOW_PGCLUSTER"], !path.isEmpty {
        return URL(fileURLWithPath: path)
    }
    return TestDatabase.packageRoot.appendingPathComponent("scripts/pgcluster")
}

/// Runs `body` with a PostgreSQL cluster of its own (scripts/pgcluster, fsync off) in a new
/// temporary folder; `body` gets its URL and folder (for `pgcluster restart`). The cluster is
/// stopped and its folder removed afterwards, whatever happens: it must not outlive the test.
public func withPrivateCluster<T>(_ label: String, _ body: (_ url: String, _ folder: URL) async throws -> T) async throws -> T {
    let cluster = try await PrivateCluster.start(label: label, fast: true, script: pgclusterScript)
    let outcome: Result<T, any Error>
    do {
        outcome = .success(try await body(cluster.url, cluster.directory))
    } catch {
        outcome = .failure(error)
    }
    await cluster.stop()
    return try outcome.get()
}
