public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished program printed and how it ended.
public struct ProcessResult: Sendable {
    /// The exit status, or 128 + the signal that ended it (as shells report it).
    public var status: Int32
    /// Everything it wrote to standard output.
    public var stdout: String
    /// Everything it wrote to standard error.
    public var stderr: String
}

/// A child process started with `posix_spawn`, its output going to files.
///
/// Foundation's `Process.waitUntilExit` was seen spinning forever on Linux when the child left
/// a daemon behind (pg_ctl starting a server), so tests and benchmarks spawn and reap children
/// themselves.
/// Output goes to files, not pipes, so a daemon that inherits them never blocks anyone.
public final class ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The file its standard output goes to.
    public let stdoutPath: String
    /// The file its standard error goes to.
    public let stderrPath: String

    /// Starts `executable` with `arguments`; the environment is this process's plus `environment`.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("callwindow-child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        stdoutPath = folder.appendingPathComponent("stdout").path
        stderrPath = folder.appendingPathComponent("stderr").path
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable.path, &actions, nil, argv, envp)
        guard result == 0 else {
            throw CocoaError(.fileReadNoPermission, userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable.path): errno \(result)"])
        }
        self.pid = pid
    }

    /// Sends `signal` (SIGTERM by default; SIGKILL for a crash).
    public func signal(_ signal: Int32 = SIGTERM) {
        kill(pid, signal)
    }

    /// Waits for the child to end and returns its status and output.
    public func wait() async -> ProcessResult {
        let pid = self.pid
        // waitpid blocks: on a thread of its own. On Linux the global concurrent queue is the
        // pool Swift's tasks run on (as many threads as cores), so a few children waited for
        // there stalled every task of the test process for seconds.
        let status: Int32 = await withCheckedContinuation { continuation in
            let waiter = Thread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                // Exit code when it exited, 128 + signal when a signal ended it (as shells do).
                let signalled = status & 0x7F
                continuation.resume(returning: signalled == 0 ? (status >> 8) & 0xFF : 128 + signalled)
            }
            waiter.name = "waitpid \(pid)"
            waiter.start()
        }
        return ProcessResult(status: status, stdout: stdout, stderr: stderr)
    }

    /// Whether the child is still running (not ended, not a zombie waiting to be reaped).
    public var isRunning: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        // The state letter of /proc/PID/stat: Z (zombie) and X (dead) have ended.
        let letter = stat[stat.index(after: close)...].split(separator: " ").first
        return letter != "Z" && letter != "X"
    }

    /// What the child printed so far.
    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    /// What the child wrote to standard error so far.
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// Runs a program to completion.
public func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    await (try ChildProcess(executable, arguments, environment: environment)).wait()
}
