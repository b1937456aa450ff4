public import Foundation
public import Postgres

/// One audit row as the dashboard shows it.
public struct AuditEntry: Sendable, Equatable {
    /// When the attempt was made (epoch ms).
    public var attemptedAt: Int64
    /// Its campaign, window and delivery.
    public var campaignID: Int64, windowID: Int64?, deliveryID: Int64?
    /// The record's caller and receiver.
    public var caller: String, receiver: String
    /// The call reason sent (user input).
    public var callReason: String?
    /// The attempt's outcome.
    public var outcome: AuditOutcome
    /// The HTTP status, when there was an answer.
    public var httpStatus: Int?
    /// Round-trip time in ms, when there was a request.
    public var latencyMs: Int?
    /// The token's fingerprint (never the token).
    public var tokenFingerprint: String?
    /// Why, for anything but an acceptance.
    public var reason: String?
}

/// How many audit rows share an outcome, HTTP status and reason.
public struct ErrorGroup: Sendable, Equatable {
    /// The outcome.
    public var outcome: AuditOutcome
    /// The HTTP status, if any.
    public var httpStatus: Int?
    /// The reason, if any.
    public var reason: String?
    /// Rows in the group.
    public var count: Int
}

/// Where a page of the audit trail ends: the next page starts just after it (older rows).
public struct AuditCursor: Sendable, Equatable, CustomStringConvertible {
    /// `attempted_at` in microseconds since the epoch.
    public var attemptedAtMicros: Int64
    /// The row's physical position inside its partition: with `attempted_at` (which picks the
    /// partition) a unique, stable tiebreak in an append-only table.
    public var rowID: String

    /// A cursor at the given row.
    public init(attemptedAtMicros: Int64, rowID: String) {
        self.attemptedAtMicros = attemptedAtMicros
        self.rowID = rowID
    }

    /// Parses the text form `micros.block.offset`, or nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let at = Int64(parts[0]), let block = UInt32(parts[1]), let offset = UInt16(parts[2]) else { return nil }
        self.init(attemptedAtMicros: at, rowID: "(\(block),\(offset))")
    }

    /// The text form for a URL: `micros.block.offset`.
    public var description: String {
        let inner = rowID.dropFirst().dropLast().split(separator: ",")
        return "\(attemptedAtMicros).\(inner.first ?? "0").\(inner.last ?? "0")"
    }
}

/// The audit trail's filters; nil means any.
public struct AuditFilter: Sendable, Equatable {
    /// Only this campaign.
    public var campaignID: Int64?
    /// Only this outcome.
    public var outcome: AuditOutcome?
    /// Only this receiver (exact phone as stored).
    public var receiver: String?
    /// From this instant (epoch ms, inclusive).
    public var from: Int64?
    /// Until this instant (epoch ms, exclusive).
    public var until: Int64?

    /// A filter; nil values match anything.
    public init(campaignID: Int64? = nil, outcome: AuditOutcome? = nil, receiver: String? = nil, from: Int64? = nil, until: Int64? = nil) {
        self.campaignID = campaignID
        self.outcome = outcome
        self.receiver = receiver
        self.from = from
        self.until = until
    }
}

/// One page of the audit trail, newest first.
public struct AuditPage: Sendable {
    /// The rows.
    public var entries: [AuditEntry]
    /// Where the next (older) page starts; nil on the last page.
    public var next: AuditCursor?
}

extension DashboardStore {
    private static let auditSelect = """
        SELECT callwindow.ms_of(attempted_at) AS at_ms, (extract(epoch FROM attempted_at) * 1000000)::int8 AS at_us,
               ctid::text AS row_id, campaign_id, window_id, delivery_id, caller, receiver, call_reason, outcome, http_status,
               latency_ms, token_fingerprint, reason
        FROM callwindow.push_attempts
        """

    /// Deliveries of a window still in the queue table, by state (finished ones leave it once
    /// the window has ended; `window_progress` keeps their totals).
    public func recordsByState(window windowID: Int64, of campaignID: Int64, on connection: PostgresConnection) async throws -> [DeliveryState: Int] {
        var counts: [DeliveryState: Int] = [:]
        for row in try await connection.query(
            "SELECT state, count(*) AS n FROM callwindow.deliveries WHERE campaign_id = $1 AND window_id = $2 GROUP BY state",
            campaignID, windowID) {
            guard let state = DeliveryState(rawValue: try row.decode("state")) else { continue }
            counts[state] = try row.decode("n")
        }
        return counts
    }

    /// The newest `limit` audit rows of a window (attempts before `until`, epoch ms).
    public func audit(window windowID: Int64, of campaignID: Int64, until: Int64, limit: Int = 100,
                      on connection: PostgresConnection) async throws -> [AuditEntry] {
        try await connection.query(
            Self.auditSelect + """

            WHERE campaign_id = $1 AND window_id = $2 AND attempted_at < callwindow.at_ms($3)
            ORDER BY attempted_at DESC, ctid DESC
            LIMIT $4
            """, campaignID, windowID, until, limit
        ).map(Self.entry)
    }

    /// A window's audit rows that are not acceptances, grouped by outcome, status and reason,
    /// largest group first (attempts before `until`, epoch ms).
    public func errors(window windowID: Int64, of campaignID: Int64, until: Int64, on connection: PostgresConnection) async throws -> [ErrorGroup] {
        try await connection.query(
            """
            SELECT outcome, http_status, reason, count(*) AS n
            FROM callwindow.push_attempts
            WHERE campaign_id = $1 AND window_id = $2 AND attempted_at < callwindow.at_ms($3) AND outcome <> 'accepted'
            GROUP BY outcome, http_status, reason
            ORDER BY n DESC, outcome, reason
            LIMIT 100
            """, campaignID, windowID, until
        ).compactMap { row in
            guard let outcome = AuditOutcome(rawValue: try row.decode("outcome")) else { return nil }
            return ErrorGroup(outcome: outcome, httpStatus: try row.decode("http_status"), reason: try row.decode("reason"),
                              count: try row.decode("n"))
        }
    }

    /// One page of the audit trail matching `filter`, newest first, starting after `cursor`.
    /// Paged by keyset on (`attempted_at`, row position), never by OFFSET.
    public func audit(_ filter: AuditFilter, after cursor: AuditCursor?, limit: Int = 100, on connection: PostgresConnection) async throws -> AuditPage {
        let size = min(max(limit, 1), 1_000)
        let rows = try await connection.query(
            Self.auditSelect + """

            WHERE ($1::int8 IS NULL OR campaign_id = $1)
              AND ($2::text IS NULL OR outcome = $2)
              AND ($3::text IS NULL OR receiver = $3)
              AND ($4::int8 IS NULL OR attempted_at >= callwindow.at_ms($4))
              AND ($5::int8 IS NULL OR attempted_at < callwindow.at_ms($5))
              AND ($6::int8 IS NULL OR attempted_at <= timestamptz 'epoch' + $6 * interval '1 microsecond')
              AND ($6::int8 IS NULL OR (attempted_at, ctid) < (timestamptz 'epoch' + $6 * interval '1 microsecond', $7::tid))
            ORDER BY attempted_at DESC, ctid DESC
            LIMIT $8
            """,
            filter.campaignID, filter.outcome?.rawValue, filter.receiver, filter.from, filter.until,
            cursor?.attemptedAtMicros, cursor?.rowID ?? "(0,0)", size + 1)
        var entries = try rows.map(Self.entry)
        var next: AuditCursor?
        if entries.count > size {
            entries.removeLast()
            let last = rows[size - 1]
            next = AuditCursor(attemptedAtMicros: try last.decode("at_us"), rowID: try last.decode("row_id"))
        }
        return AuditPage(entries: entries, next: next)
    }

    private static func entry(_ row: PostgresRow) throws -> AuditEntry {
        let word: String = try row.decode("outcome")
        guard let outcome = AuditOutcome(rawValue: word) else {
            throw StoreError(.invalidData, "an audit row has an unknown outcome")
        }
        return AuditEntry(
            attemptedAt: try row.decode("at_ms"), campaignID: try row.decode("campaign_id"), windowID: try row.decode("window_id"),
            deliveryID: try row.decode("delivery_id"), caller: try row.decode("caller"), receiver: try row.decode("receiver"),
            callReason: try row.decode("call_reason"), outcome: outcome, httpStatus: try row.decode("http_status"),
            latencyMs: try row.decode("latency_ms"), tokenFingerprint: try row.decode("token_fingerprint"), reason: try row.decode("reason"))
    }
}
