public import ArgumentParser
import Daemon
import Foundation
import Planning

/// `callwindow preview`: the read-only planning preview.
struct PreviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview",
        abstract: "Show the windows campaigns become, their records, and when each push starts and finishes.",
        discussion: """
            Read-only: it runs in a READ ONLY transaction and writes nothing. Push times come from \
            the same planner the daemon uses, all active campaigns of a client account sharing \
            one token pool. Without --campaign or --client every campaign is shown.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, svg }

    @Option(name: .customLong("campaign"), help: "A campaign id to show (repeatable).")
    var campaigns: [Int64] = []

    @Option(name: .customLong("client"), help: "Show every campaign of this client account (uuid).")
    var client: String?

    @Option(help: "Output format: text, json or svg.")
    var format: Format = .text

    @Option(help: ArgumentHelp("Write the output to FILE instead of standard output.", valueName: "FILE"))
    var output: String?

    @Option(help: "Tokens in the pool (default 1).")
    var tokens: Int = 1

    @Option(help: "Transport: v1, v2 or batch.")
    var transport: Transport = .v1

    @Option(name: .customLong("push-margin"), help: "Seconds added to each window's push, as scheduler.push_margin_seconds (default 10).")
    var pushMargin: Int = 10

    @Option(help: ArgumentHelp("Plan as of this instant: ISO 8601 (2026-12-01T09:00:00Z) or epoch milliseconds (default: now).", valueName: "INSTANT"))
    var now: String?

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard tokens >= 1, tokens <= 1000 else { throw ValidationError("--tokens \(tokens) is out of range: give 1 to 1000") }
        guard pushMargin >= 0, pushMargin <= 3_600 else { throw ValidationError("--push-margin \(pushMargin) is out of range: give 0 to 3600") }
        if let client, UUID(uuidString: client) == nil {
            throw ValidationError("--client \"\(client)\" is not a uuid")
        }
        if let now, Self.parseInstant(now) == nil {
            throw ValidationError("--now \"\(now)\" is neither an ISO 8601 instant (2026-12-01T09:00:00Z) nor epoch milliseconds")
        }
    }

    func run() async throws {
        let instant = now.flatMap(Self.parseInstant) ?? SystemClock().now()
        let selection: AccountPreview.Selection =
            if !campaigns.isEmpty { .campaigns(campaigns) } else if let client = client.flatMap(UUID.init(uuidString:)) { .client(client) } else { .all }
        do {
            let report = try await AccountPreview.report(
                selection, capacity: Capacity(tokens: tokens, transport: transport, startupMs: Int64(pushMargin) * 1000),
                now: instant, database: try database.configuration())
            let rendered: String = switch format {
            case .text: report.text()
            case .json: report.json()
            case .svg: report.svg()
            }
            if let output {
                try Data(rendered.utf8).write(to: URL(fileURLWithPath: output))
            } else {
                print(rendered, terminator: rendered.hasSuffix("\n") ? "" : "\n")
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
    }

    /// ISO 8601 (with or without fractional seconds) or epoch milliseconds.
    static func parseInstant(_ text: String) -> Int64? {
        if let millis = Int64(text) { return millis }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }
}

/// `--transport v1|v2|batch`; anything else is a usage error that lists the three.
extension Transport: ExpressibleByArgument {}
