public import Foundation

/// Runs a program to completion and returns its exit status and output.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read on dispatch threads so a chatty child never blocks on a full pipe.
    async let stdout = readAll(out.fileHandleForReading)
    async let stderr = readAll(err.fileHandleForReading)
    let (o, e) = await (stdout, stderr)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async {
            process.waitUntilExit()
            continuation.resume()
        }
    }
    return ProcessResult(status: process.terminationStatus, stdout: o, stderr: e)
}

private func readAll(_ handle: FileHandle) async -> String {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            let data = handle.readDataToEndOfFile()
            continuation.resume(returning: String(decoding: data, as: UTF8.self))
        }
    }
}

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
