import Foundation

/// The bench's figures, as text and as one JSON object with snake_case names.
public struct BenchReport: Encodable, Sendable {
    public var tokens: Int
    public var transport: String
    public var ceilingRPS: Double?
    public var achievedRPS: Double
    public var utilisation: Double?
    public var accepted: Int
    public var rateLimited: Int
    public var errors: Int
    public var p50Ms: Double
    public var p99Ms: Double
    public var cpuSeconds: Double
    public var peakRSSMB: Double

    enum CodingKeys: String, CodingKey {
        case tokens, transport, accepted, errors
        case ceilingRPS = "ceiling_rps", achievedRPS = "achieved_rps", utilisation
        case rateLimited = "rate_limited", p50Ms = "p50_ms", p99Ms = "p99_ms"
        case cpuSeconds = "cpu_seconds", peakRSSMB = "peak_rss_mb"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(transport, forKey: .transport)
        try c.encode(ceilingRPS.map(Self.round), forKey: .ceilingRPS)  // null with --no-limits
        try c.encode(Self.round(achievedRPS), forKey: .achievedRPS)
        try c.encode(utilisation.map { (($0 * 10_000).rounded()) / 10_000 }, forKey: .utilisation)
        try c.encode(accepted, forKey: .accepted)
        try c.encode(rateLimited, forKey: .rateLimited)
        try c.encode(errors, forKey: .errors)
        try c.encode(p50Ms, forKey: .p50Ms)
        try c.encode(p99Ms, forKey: .p99Ms)
        try c.encode(Self.round(cpuSeconds), forKey: .cpuSeconds)
        try c.encode(Self.round(peakRSSMB), forKey: .peakRSSMB)
    }

    static func round(_ value: Double) -> Double { (value * 100).rounded() / 100 }

    /// The report as aligned lines.
    public var text: String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        return """
            tokens        \(tokens)
            transport     \(transport)
            ceiling       \(ceilingRPS.map { fixed($0) + " records/s" } ?? "none (--no-limits)")
            achieved      \(fixed(achievedRPS)) records/s
            utilisation   \(utilisation.map { fixed($0 * 100, 2) + " %" } ?? "n/a")
            accepted      \(accepted)
            rate limited  \(rateLimited) (429s seen)
            other errors  \(errors)
            latency       p50 \(fixed(p50Ms, 0)) ms, p99 \(fixed(p99Ms, 0)) ms (ms resolution)
            cpu           \(fixed(cpuSeconds, 2)) s (whole process)
            peak rss      \(fixed(peakRSSMB)) MB
            """
    }

    /// The report as one JSON object with snake_case names.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}

