import ArgumentParser
import Benchmarks
import Foundation

/// `callwindow bench planning`: how long the pure planner takes to cut long campaigns into
/// windows (the figure the window tests used to assert; a test checks behaviour, not speed).
struct PlanningBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planning",
        abstract: "Measure how long the planner takes to cut long campaigns into windows (median of runs).",
        discussion: "Pure computation: no database, no API. Campaigns: 10 years of weekday nights in America/New_York, 90 days of office hours in Europe/Berlin, 10 years round the clock."
    )

    @Option(help: "Runs per campaign (the median is reported).")
    var runs: Int = 20

    @Flag(help: "Print one JSON object on the last line.")
    var json = false

    func run() async throws {
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        let timings: [PlanningBenchmark.Timing]
        do {
            timings = try PlanningBenchmark.run(runs: runs)
        } catch {
            throw fail(error)
        }
        for timing in timings {
            print(String(format: "%@: %d windows, median %.3f ms (min %.3f, max %.3f) over %d runs",
                         timing.name, timing.windows, timing.medianMs, timing.runsMs.first ?? 0, timing.runsMs.last ?? 0, runs))
        }
        if json {
            let fields = timings.map { String(format: #""%@_ms": %.3f, "%@_windows": %d"#, $0.name, $0.medianMs, $0.name, $0.windows) }
            print("{" + fields.joined(separator: ", ") + "}")
        }
    }
}
