public import Foundation

/// A private PostgreSQL cluster that `scripts/pgcluster` starts in a new temporary folder:
/// for the benchmarks, and for the tests that restart their own server. `stop()` stops it and
/// removes the folder.
public struct PrivateCluster: Sendable {
    /// `scripts/pgcluster`.
    public let script: URL
    /// The cluster's folder (its data directory and socket live inside).
    public let directory: URL
    /// `postgres://…` of the cluster's database.
    public let url: String

    /// Why a cluster could not be started, in one sentence.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `scripts/pgcluster`: `$CALLWINDOW_PGCLUSTER`, else found above the executable or the
    /// working folder.
    public static func locateScript() throws(Failure) -> URL {
        if let path = ProcessInfo.processInfo.environment["CALLWINDOW_PGCLUSTER"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        guard let found = findUpwards("scripts/pgcluster") else {
            throw Failure(description: "scripts/pgcluster not found: pass --database-url or set CALLWINDOW_PGCLUSTER to the script")
        }
        return found
    }

    /// Starts a cluster in `/tmp/callwindow-<label>-…`. `fast` turns fsync off (tests, the sender
    /// bench); the pipeline bench runs durable.
    public static func start(label: String = "bench", fast: Bool = true, script: URL? = nil) async throws -> PrivateCluster {
        let script = try script ?? locateScript()
        let directory = URL(fileURLWithPath: "/tmp/callwindow-\(label)-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let started = try await run(script, ["start", directory.path], environment: fast ? ["PGCLUSTER_FAST": "1"] : [:])
        let cluster = PrivateCluster(script: script, directory: directory, url: started.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        guard started.status == 0, cluster.url.hasPrefix("postgres") else {
            await cluster.stop()
            let reason = started.stderr.split(separator: "\n").last.map(String.init) ?? "no database URL printed"
            throw Failure(description: "scripts/pgcluster start failed: \(reason)")
        }
        return cluster
    }

    /// Stops the server and removes the folder, both in child processes (a cluster's folder
    /// holds about a thousand files: their unlinks do not hold a thread of the task pool).
    public func stop() async {
        if let stop = try? ChildProcess(script, ["stop", directory.path]) {
            _ = await stop.wait()
        }
        if let remove = try? ChildProcess(URL(fileURLWithPath: "/bin/rm"), ["-rf", directory.path]) {
            _ = await remove.wait()
        }
    }
}

/// Looks for `relative` in the folders above the executable, then above the working folder.
public func findUpwards(_ relative: String) -> URL? {
    let starts = [
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
        URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
    ]
    for start in starts {
        var folder = start
        for _ in 0..<8 {
            let candidate = folder.appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
    }
    return nil
}
