import ArgumentParser
import Foundation
import Planning
import Sandbox

/// `callwindow sandbox`: runs the local fake of the call-personalisation API until interrupted.
/// The first line on stdout is `listening on http://HOST:PORT` (with the real port for `--port 0`).
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local, faithful fake of the Truecaller call-personalisation API.",
        discussion: """
            Serves the documented endpoints with their validations, limits and status codes, plus \
            POST /sandbox/revoke and GET /sandbox/stats. Faults and limits come from the YAML config \
            (see config/sandbox.yaml).
            """
    )

    @Option(name: .long, help: "The sandbox's YAML configuration (clients, keys, labels, limits, faults).")
    var config: String

    @Option(name: .long, help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on; 0 picks a free port.")
    var port: Int = 8089

    @Option(name: .customLong("record-file"), help: "Append one JSON line per accepted record to this file.")
    var recordFile: String?

    @Option(name: .customLong("issued-tokens-file"), help: ArgumentHelp(
        "Append every token minted to this file, one per line (secrets: for test harnesses that search logs for them).",
        valueName: "FILE"))
    var issuedTokensFile: String?

    func validate() throws {
        guard (0...65_535).contains(port) else {
            throw ValidationError("--port must be between 0 and 65535")
        }
    }

    func run() async throws {
        let configuration = try SandboxConfiguration.load(path: config)
        let server = try SandboxServer(
            configuration: configuration, clock: SystemClock(), recordFile: recordFile, issuedTokensFile: issuedTokensFile, host: host, port: port
        )
        let host = self.host
        try await server.run { port in
            // Unbuffered, so a parent process reading our stdout sees the line at once.
            FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
        }
    }
}
