public import Foundation
public import Postgres
public import Planning

/// A window as the planner wants it stored (instants in epoch ms).
public struct PlannedWindow: Sendable, Hashable {
    /// The window's start (epoch ms).
    public var startsAt: Int64
    /// The window's end (epoch ms).
    public var endsAt: Int64
    /// By when all its records should be pushed, `startsAt − lead` (epoch ms).
    public var deadline: Int64
    /// When pushing its records starts (epoch ms).
    public var pushAt: Int64
    /// How long after `deadline` the planned push finishes (ms; 0 when on time).
    public var lateByMs: Int64
    /// How many records it holds as planned (the campaign's valid records): counted as expired or
    /// cancelled if the window ends or is cancelled before its deliveries are created.
    public var records: Int

    /// A planned window; `lateByMs` defaults to 0 (on time), `records` to 0.
    public init(startsAt: Int64, endsAt: Int64, deadline: Int64, pushAt: Int64, lateByMs: Int64 = 0, records: Int = 0) {
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.deadline = deadline
        self.pushAt = pushAt
        self.lateByMs = lateByMs
        self.records = records
    }
}

/// One record claimed for sending, with its lease.
public struct Delivery: Sendable, Hashable {
    /// The row id in `callwindow.deliveries`.
    public var id: Int64
    /// The client account it is pushed for.
    public var clientAccountID: UUID
    /// The campaign it belongs to.
    public var campaignID: Int64
    /// The window it belongs to.
    public var windowID: Int64
    /// The caller's phone number.
    public var caller: String
    /// The receiver's phone number.
    public var receiver: String
    /// The campaign's label.
    public var labelID: UUID
    /// The label name text, resolved pair → receiver → campaign; `nil` when none sets it.
    public var labelName: String?
    /// The call reason text, resolved pair → receiver → campaign; `nil` when none sets it.
    public var callReason: String?
    /// The window's start (epoch ms).
    public var startsAt: Int64
    /// The window's end (epoch ms); once it passes, the record expires.
    public var endsAt: Int64
    /// By when it should be pushed (epoch ms).
    public var deadline: Int64
    /// When its window's push starts (epoch ms).
    public var pushAt: Int64
    /// How many times it has been claimed, this claim included (not HTTP attempts).
    public var attempts: Int
    /// Fencing token: a result is applied only while the row still carries it.
    public var leaseToken: Int64
}

/// What happened to one claimed delivery: where it goes next, and every HTTP attempt made for
/// it (each becomes one audit row; a result reached without any request gets one row too).
public struct DeliveryResult: Sendable {
    /// Where the delivery goes next.
    public enum Next: String, Sendable {
        /// Final states: the API accepted it; it was refused for good (by the API or validation); its
        /// `ends_at` passed; an admission check withdrew it (cancelled, or suppressed by the
        /// do-not-contact list).
        case accepted, rejected, expired, cancelled, suppressed
        /// Back to the queue, to be tried again at `retryAt`.
        case retry = "pending"
    }

    /// The claimed delivery, with the lease token the result is fenced on.
    public var delivery: Delivery
    /// Where the delivery goes next.
    public var next: Next
    /// The result's outcome word.
    public var outcome: ResultOutcome
    /// Why, in words, for a result other than acceptance; written to the row and the audit trail.
    public var reason: String?
    /// When a `.retry` delivery may be claimed again (epoch ms); `nil` means at once.
    public var retryAt: Int64?
    /// The HTTP attempts behind this result, oldest first.
    public var attempts: [Attempt]

    /// One HTTP attempt, as the audit trail records it.
    public struct Attempt: Sendable {
        /// When the attempt started (epoch ms).
        public var at: Int64
        /// Fingerprint of the token it used, if any.
        public var tokenFingerprint: String?
        /// The HTTP status answered; `nil` without a response.
        public var httpStatus: Int?
        /// Time until the answer (ms); `nil` without one.
        public var latencyMs: Int?
        /// This attempt's outcome.
        public var outcome: AuditOutcome
        /// Why, in words, when the attempt did not succeed.
        public var reason: String?
        /// An attempt as the audit trail records it.
        public init(at: Int64, tokenFingerprint: String?, httpStatus: Int?, latencyMs: Int?, outcome: AuditOutcome, reason: String? = nil) {
            self.at = at
            self.tokenFingerprint = tokenFingerprint
            self.httpStatus = httpStatus
            self.latencyMs = latencyMs
            self.outcome = outcome
            self.reason = reason
        }
    }

    /// A result for `delivery`; `retryAt` matters only for `.retry`, and without `attempts` one audit row
    /// is written from the result itself.
    public init(delivery: Delivery, next: Next, outcome: ResultOutcome, reason: String? = nil, retryAt: Int64? = nil, attempts: [Attempt] = []) {
        self.delivery = delivery
        self.next = next
        self.outcome = outcome
        self.reason = reason
        self.retryAt = retryAt
        self.attempts = attempts
    }
}

/// The scheduler's SQL: windows, the delivery queue (materialise, claim, record, rescue,
/// expire, clean up) and the audit trail. `now` is always a parameter (epoch ms); nothing here
/// reads the database's clock.
public struct DeliveryStore: Sendable {
    /// Who this process is, for leases and the audit trail.
    public var instance: String
    /// The transport, whose name is written to the audit trail.
    public var transport: Transport

    /// A store that stamps audit rows with `instance` and `transport`.
    public init(instance: String, transport: Transport) {
        self.instance = instance
        self.transport = transport
    }

    /// Cancels pending deliveries whose caller–receiver record is no longer in the campaign
    /// (a receiver, caller or pair was removed). Already-pushed records cannot be recalled.
    @discardableResult
    public func cancelRemoved(campaignID: Int64, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await finish(.removedFromCampaign(campaignID), state: .cancelled, reason: "the record was removed from the campaign",
                         now: now, on: connection)
    }

    /// Claims up to `limit` due deliveries of an account, earliest deadline first, under a lease
    /// of `leaseMs`; other processes skip them (`FOR UPDATE SKIP LOCKED`).
    ///
    /// The claimed rows are updated by primary key (`id = ANY` of the locked ids, in `byIndex`).
    /// Joined with the locked ids instead (`FROM due WHERE d.id = due.id`), they were found by a
    /// sequential scan of the whole queue, hashed against the ids, on every claim.
    public func claim(clientAccountID: UUID, owner: String, now: Int64, limit: Int, leaseMs: Int64,
                      on connection: PostgresConnection) async throws -> [Delivery] {
        let rows = try await Self.byIndex(on: connection) { connection in try await connection.query(
            """
            WITH due AS (
              SELECT d.id FROM callwindow.deliveries d
              WHERE d.client_account_id = $1 AND \(Self.claimable(perRow: true))
                AND d.push_at <= callwindow.at_ms($2) AND d.next_attempt_at <= callwindow.at_ms($2)
              ORDER BY d.deadline, d.priority DESC, d.id
              LIMIT $3
              FOR UPDATE SKIP LOCKED
            )
            UPDATE callwindow.deliveries d
            SET state = 'in_flight', lease_owner = $4, lease_expires_at = callwindow.at_ms($2 + $5),
                lease_token = d.lease_token + 1, attempts = d.attempts + 1
            WHERE d.id = ANY(ARRAY(SELECT id FROM due))
            RETURNING d.id, d.client_account_id, d.campaign_id, d.window_id, d.caller, d.receiver, d.label_id, d.label_name,
                      d.call_reason, callwindow.ms_of(d.starts_at) AS starts_ms, callwindow.ms_of(d.ends_at) AS ends_ms,
                      callwindow.ms_of(d.deadline) AS deadline_ms, callwindow.ms_of(d.push_at) AS push_ms, d.attempts, d.lease_token
            """, clientAccountID, now, limit, owner, leaseMs) }
        return try rows.map { row in
            Delivery(
                id: try row.decode("id"), clientAccountID: try row.decode("client_account_id"),
                campaignID: try row.decode("campaign_id"), windowID: try row.decode("window_id"),
                caller: try row.decode("caller"), receiver: try row.decode("receiver"), labelID: try row.decode("label_id"),
                labelName: try row.decode("label_name"), callReason: try row.decode("call_reason"),
                startsAt: try row.decode("starts_ms"), endsAt: try row.decode("ends_ms"), deadline: try row.decode("deadline_ms"),
                pushAt: try row.decode("push_ms"), attempts: try row.decode("attempts"), leaseToken: try row.decode("lease_token"))
        }.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }
    }

    /// Runs `body` in a transaction in which PostgreSQL reads the queue by index wherever an
    /// index serves, and compiles nothing (`enable_seqscan` and `jit` off for the transaction).
    ///
    /// The queue's statistics are always stale: its rows change state within seconds, and a
    /// window's rows are all created just before its push. Planned on such statistics, the claim,
    /// the admission check and the result write at times believed the queue small and read all of
    /// it for each batch (a sequential scan, hashed against the batch's ids): 40 rows read for
    /// every record pushed in a 20,000-record window, and more as the queue grows. The same
    /// statistics can price a claim high enough for JIT compilation, which took 45 ms of a 70 ms
    /// claim of 500.
    static func byIndex<T>(readOnly: Bool = false, on connection: PostgresConnection,
                           _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.transaction(readOnly: readOnly, settings: [("enable_seqscan", "off"), ("jit", "off")], body)
    }

    /// What makes a delivery `d` claimable, due or not: pending, its campaign active with a
    /// dynamic label, its receiver not on the account's do-not-contact list.
    ///
    /// The same condition is spelled two ways, for two kinds of statement:
    /// - `perRow` (the claim, which reads the claim index in its order and stops at its limit):
    ///   the campaign and the list are looked up per row, by scalar subqueries, which the planner
    ///   cannot turn into joins. As `EXISTS`, the campaign check became a join that drove the
    ///   claim from the campaign through `deliveries_campaign_idx`: every pending row of the
    ///   campaign was read and sorted for each claim of 500 (20,000 rows, 90 of the claim's
    ///   105 ms). The list check is `NOT (SELECT EXISTS …)`: as `(SELECT …) IS NULL` the planner
    ///   guessed that 0.5 % of the rows pass, and read and sorted all of them again.
    /// - as a set (`nextDue`, which looks at every pending row of the account): `EXISTS` and
    ///   `NOT EXISTS`, which the planner joins once instead of probing per row (per row, the
    ///   earliest due instant of a 20,000-record queue took 150 ms).
    static func claimable(perRow: Bool) -> String {
        let campaign = """
            SELECT 1 FROM callwindow.campaigns c
            JOIN callwindow.labels l ON l.client_account_id = c.client_account_id AND l.id = c.label_id
            WHERE c.id = d.campaign_id AND c.status = 'active' AND l.label_type = 'dynamic'
            """
        let listed = "SELECT 1 FROM callwindow.do_not_contact n WHERE n.client_account_id = d.client_account_id AND n.phone = d.receiver"
        return perRow
            ? "d.state = 'pending' AND (SELECT EXISTS (\(campaign))) AND NOT (SELECT EXISTS (\(listed)))"
            : "d.state = 'pending' AND EXISTS (\(campaign)) AND NOT EXISTS (\(listed))"
    }

    /// The NOTIFY channel on which an account's id says it has deliveries to claim (created,
    /// rescued, or returned to the queue); each daemon's leader listens and wakes the account's
    /// dispatcher.
    public static let dueChannel = "callwindow_due"

    /// The earliest instant a delivery of `clientAccountID` becomes claimable (its `push_at`
    /// and retry time both reached), or `nil` when none waits: how long an idle dispatcher may
    /// sleep.
    public func nextDue(clientAccountID: UUID, on connection: PostgresConnection) async throws -> Int64? {
        try await connection.query(
            """
            SELECT callwindow.ms_of(min(greatest(d.push_at, d.next_attempt_at))) AS at FROM callwindow.deliveries d
            WHERE d.client_account_id = $1 AND \(Self.claimable(perRow: false))
            """, clientAccountID)[0].decode("at", as: Int64?.self)
    }

    /// Tells the dispatchers of `clientAccountIDs` (in every daemon) that they have deliveries
    /// to claim (NOTIFY on `dueChannel`, delivered when the surrounding transaction commits).
    public func notifyDue(clientAccountIDs: [UUID], on connection: PostgresConnection) async throws {
        guard !clientAccountIDs.isEmpty else { return }
        _ = try await connection.query(
            "SELECT count(pg_notify($2, a::text)) AS n FROM unnest($1::uuid[]) AS a", clientAccountIDs, Self.dueChannel)
    }

    /// Due records of an account waiting to be claimed (active campaigns only), counted up to
    /// `limit`: how much work is ahead, so the token pool can grow to it.
    public func dueBacklog(clientAccountID: UUID, now: Int64, limit: Int = 10_000, on connection: PostgresConnection) async throws -> Int {
        try await connection.query(
            """
            SELECT count(*)::int8 AS n FROM (
              SELECT 1 FROM callwindow.deliveries d JOIN callwindow.campaigns c ON c.id = d.campaign_id
              WHERE d.client_account_id = $1 AND d.state = 'pending' AND c.status = 'active'
                AND d.push_at <= callwindow.at_ms($2) AND d.next_attempt_at <= callwindow.at_ms($2)
              LIMIT $3) due
            """, clientAccountID, now, limit)[0].decode("n", as: Int.self)
    }

    /// Extends the lease of deliveries this owner still holds; returns how many it still holds.
    @discardableResult
    public func renewLeases(ids: [Int64], owner: String, now: Int64, leaseMs: Int64, on connection: PostgresConnection) async throws -> Int {
        try await connection.execute(
            """
            UPDATE callwindow.deliveries SET lease_expires_at = callwindow.at_ms($3 + $4)
            WHERE id = ANY($1) AND state = 'in_flight' AND lease_owner = $2
            """, ids, owner, now, leaseMs)
    }

    /// Writes a batch of results and their audit rows in one transaction.
    ///
    /// The rows are found by primary key alone (`id = ANY`), and the fence (still in flight under
    /// this owner's lease) compares them with columns of the input, so that it is a join
    /// condition rather than a filter on the queue: a queue's statistics are always stale (they
    /// saw the rows pending), and as a filter the planner estimated one in-flight row, scanned
    /// every in-flight row of every owner through the lease index and compared each with every
    /// result (670,000 comparisons for one group of 449 in a 20,000-record push).
    ///
    /// A state change is applied only while the delivery is still in flight under this owner's
    /// lease token (fencing); the audit row of every attempt is written either way, because the
    /// attempt happened. Returns how many state changes were applied.
    @discardableResult
    public func record(_ results: [DeliveryResult], owner: String, now: Int64, on connection: PostgresConnection) async throws -> Int {
        guard !results.isEmpty else { return 0 }
        return try await Self.byIndex(on: connection) { connection in
            let applied = try await connection.query(
                """
                WITH input AS (
                  SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $9::text[], $10::text[])
                    AS t(id, lease_token, state, outcome, reason, retry_ms, held, holder)
                ), updated AS (
                  UPDATE callwindow.deliveries d
                  SET state = i.state, outcome = i.outcome, reason = i.reason,
                      next_attempt_at = CASE WHEN i.state = 'pending' THEN callwindow.at_ms(i.retry_ms) ELSE d.next_attempt_at END,
                      lease_owner = NULL, lease_expires_at = NULL,
                      finished_at = CASE WHEN i.state = 'pending' THEN NULL ELSE callwindow.at_ms($8) END
                  FROM input i
                  WHERE d.id = ANY($1::int8[]) AND d.id = i.id
                    AND (d.state, d.lease_owner, d.lease_token) = (i.held, i.holder, i.lease_token)
                  RETURNING d.window_id, d.state
                ), counted AS (
                  UPDATE callwindow.windows w
                  SET accepted = w.accepted + u.accepted, rejected = w.rejected + u.rejected, expired = w.expired + u.expired,
                      cancelled = w.cancelled + u.cancelled, suppressed = w.suppressed + u.suppressed
                  FROM (SELECT window_id, count(*) FILTER (WHERE state = 'accepted') AS accepted,
                               count(*) FILTER (WHERE state = 'rejected') AS rejected,
                               count(*) FILTER (WHERE state = 'expired') AS expired,
                               count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                               count(*) FILTER (WHERE state = 'suppressed') AS suppressed
                        FROM updated GROUP BY window_id) u
                  WHERE w.id = u.window_id
                )
                SELECT count(*) AS applied FROM updated
                """,
                results.map(\.delivery.id), results.map(\.delivery.leaseToken), results.map(\.next.rawValue),
                results.map(\.outcome.rawValue), results.map { Self.storable($0.reason) }, results.map { $0.retryAt ?? now }, owner, now,
                Array(repeating: DeliveryState.inFlight.rawValue, count: results.count), Array(repeating: owner, count: results.count))
            try await insertAudit(results, now: now, on: connection)
            // Records back in the queue may be claimed by any instance: wake their dispatchers.
            let requeued = Set(results.filter { $0.next == .retry }.map(\.delivery.clientAccountID))
            try await notifyDue(clientAccountIDs: requeued.sorted { $0.uuidString < $1.uuidString }, on: connection)
            return try applied[0].decode("applied", as: Int.self)
        }
    }

    private func insertAudit(_ results: [DeliveryResult], now: Int64, on connection: PostgresConnection) async throws {
        // One row per attempt. A result the attempts did not decide themselves (expired, released,
        // cancelled, suppressed; or any result reached without a request) gets a row of its own,
        // so the trail always ends with what became of the record.
        var rows: [(DeliveryResult.Attempt, Delivery)] = []
        for result in results {
            rows += result.attempts.map { ($0, result.delivery) }
            let decidedByAttempt = !result.attempts.isEmpty && (result.outcome == .accepted || result.outcome == .rejected)
            if !decidedByAttempt {
                rows.append((DeliveryResult.Attempt(at: now, tokenFingerprint: nil, httpStatus: nil, latencyMs: nil,
                                                     outcome: AuditOutcome(result.outcome), reason: result.reason), result.delivery))
            }
        }
        let d = rows.map(\.1)
        let a = rows.map(\.0)
        try await connection.execute(
            """
            INSERT INTO callwindow.push_attempts (attempted_at, client_account_id, campaign_id, window_id, delivery_id, caller, receiver,
              starts_at, ends_at, label_id, label_name, call_reason, transport, token_fingerprint, http_status, outcome, reason,
              latency_ms, instance)
            SELECT callwindow.at_ms(att), client, campaign, win, delivery, caller, receiver, callwindow.at_ms(s), callwindow.at_ms(e),
                   label, label_name, call_reason, $17, token, status, outcome, reason, latency, $18
            FROM unnest($1::int8[], $2::uuid[], $3::int8[], $4::int8[], $5::int8[], $6::text[], $7::text[], $8::int8[], $9::int8[],
                        $10::uuid[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::text[], $16::text[], $19::int8[])
              AS t(att, client, campaign, win, delivery, caller, receiver, s, e, label, label_name, call_reason, token, status,
                   outcome, reason, latency)
            """,
            a.map(\.at), d.map(\.clientAccountID), d.map(\.campaignID), d.map(\.windowID), d.map(\.id),
            d.map(\.caller), d.map(\.receiver), d.map(\.startsAt), d.map(\.endsAt), d.map(\.labelID), d.map(\.labelName),
            d.map(\.callReason), a.map(\.tokenFingerprint), a.map { $0.httpStatus.map(Int64.init) },
            a.map(\.outcome.rawValue), a.map { Self.storable($0.reason) }, transport.rawValue, instance, a.map { $0.latencyMs.map(Int64.init) })
    }

    /// The longest reason stored, in characters; the API's messages are short, so a longer one is cut.
    public static let maxReasonCharacters = 1_000

    /// A reason as it can be stored: without NUL (PostgreSQL text cannot hold it) or other control
    /// characters (a tab, newline or carriage return becomes a space), at most
    /// `maxReasonCharacters` long. API messages are copied into reasons, so nothing they hold may
    /// make a result write fail for good.
    public static func storable(_ reason: String?) -> String? {
        guard let reason else { return nil }
        var cleaned = String.UnicodeScalarView()
        for scalar in reason.unicodeScalars {
            if scalar.value == 0 { continue }
            if scalar.properties.generalCategory == .control { cleaned.append(" "); continue }
            cleaned.append(scalar)
        }
        let text = String(cleaned)
        return text.count > maxReasonCharacters ? String(text.prefix(maxReasonCharacters - 1)) + "…" : text
    }

    /// Returns deliveries whose lease expired to the queue (compare-and-set on the expiry), so a
    /// crashed instance's work is resumed. Returns how many were rescued.
    @discardableResult
    public func rescue(clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await rescue(clientAccountIDs: [clientAccountID], now: now, on: connection)
    }

    /// `rescue` for every account of `clientAccountIDs` in one statement; each account with
    /// rescued deliveries is notified on `dueChannel`, so its dispatchers wake.
    @discardableResult
    public func rescue(clientAccountIDs: [UUID], now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await connection.query(
            """
            WITH rescued AS (
              UPDATE callwindow.deliveries SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL
              WHERE client_account_id = ANY($1::uuid[]) AND state = 'in_flight' AND lease_expires_at < callwindow.at_ms($2)
              RETURNING client_account_id
            )
            SELECT (SELECT count(*) FROM rescued) AS n,
                   (SELECT count(pg_notify($3, a::text)) FROM (SELECT DISTINCT client_account_id AS a FROM rescued) accounts) AS notified
            """, clientAccountIDs, now, Self.dueChannel)[0].decode("n", as: Int.self)
    }

    /// Pending deliveries of an account whose `ends_at` passed become `expired`, each with an
    /// audit row. Returns how many expired.
    @discardableResult
    public func expire(clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await expire(clientAccountIDs: [clientAccountID], now: now, on: connection).values.reduce(0, +)
    }

    /// `expire` for every account of `clientAccountIDs` in one statement; how many expired per
    /// account (accounts with none are absent).
    @discardableResult
    public func expire(clientAccountIDs: [UUID], now: Int64, on connection: PostgresConnection) async throws -> [UUID: Int] {
        try await finishByAccount(.endedPendingOfAccounts(clientAccountIDs), state: .expired,
                                  reason: "ends_at passed before the record could be pushed", now: now, on: connection)
    }

    /// Cancels the pending deliveries of a window, each with an audit row.
    @discardableResult
    public func cancelPending(windowID: Int64, reason: String, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await finish(.pendingOfWindow(windowID), state: .cancelled, reason: reason, now: now, on: connection)
    }

    /// Cancels a campaign's planned windows and pending deliveries (status `cancelled`). A window
    /// not yet materialised counts its planned records as cancelled, with a `window_outcomes` row.
    @discardableResult
    public func cancelCampaign(campaignID: Int64, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await connection.execute(
            """
            WITH cancelled AS (
              UPDATE callwindow.windows w
              SET state = 'cancelled',
                  records = CASE WHEN w.state = 'planned' THEN w.planned_records ELSE w.records END,
                  cancelled = w.cancelled + CASE WHEN w.state = 'planned' THEN w.planned_records ELSE 0 END
              FROM (SELECT id, state FROM callwindow.windows WHERE campaign_id = $1 AND state IN ('planned', 'materialized') FOR UPDATE) before
              WHERE w.id = before.id
              RETURNING w.*, before.state AS was
            )
            INSERT INTO callwindow.window_outcomes (at, client_account_id, campaign_id, window_id, starts_at, ends_at, outcome, records, reason, instance)
            SELECT callwindow.at_ms($2), client_account_id, campaign_id, id, starts_at, ends_at, 'cancelled', planned_records,
                   'the campaign was cancelled before the window was materialised', $3
            FROM cancelled WHERE was = 'planned'
            """, campaignID, now, instance)
        return try await finish(.pendingOfCampaign(campaignID), state: .cancelled, reason: "the campaign was cancelled", now: now, on: connection)
    }

    /// Which deliveries `finish` ends: each case is one fixed condition on `$1` (its id) and
    /// `$2` (now); no caller supplies SQL.
    enum FinishScope {
        /// The pending deliveries of a set of accounts whose `ends_at` has passed.
        case endedPendingOfAccounts([UUID])
        /// A window's pending deliveries.
        case pendingOfWindow(Int64)
        /// A campaign's pending deliveries.
        case pendingOfCampaign(Int64)
        /// A campaign's pending deliveries whose record is no longer in it (a caller, receiver or
        /// pair was removed).
        case removedFromCampaign(Int64)
        /// An account's pending deliveries whose receiver is on its do-not-contact list.
        case listedOfAccount(UUID)
        /// A window's pending deliveries whose receiver is on the account's do-not-contact list.
        case listedOfWindow(Int64)

        var condition: String {
            switch self {
            case .endedPendingOfAccounts:
                "d.client_account_id = ANY($1::uuid[]) AND d.state = 'pending' AND d.ends_at <= callwindow.at_ms($2)"
            case .pendingOfWindow:
                "d.window_id = $1 AND d.state = 'pending'"
            case .pendingOfCampaign:
                "d.campaign_id = $1 AND d.state = 'pending'"
            case .removedFromCampaign:
                """
                d.campaign_id = $1 AND d.state = 'pending'
                AND NOT EXISTS (SELECT 1 FROM callwindow.campaign_pairs p WHERE p.campaign_id = d.campaign_id AND p.caller = d.caller AND p.receiver = d.receiver)
                AND NOT (EXISTS (SELECT 1 FROM callwindow.campaign_callers cc WHERE cc.campaign_id = d.campaign_id AND cc.phone = d.caller)
                     AND EXISTS (SELECT 1 FROM callwindow.campaign_receivers r WHERE r.campaign_id = d.campaign_id AND r.phone = d.receiver))
                """
            case .listedOfAccount:
                """
                d.client_account_id = $1 AND d.state = 'pending'
                AND EXISTS (SELECT 1 FROM callwindow.do_not_contact n WHERE n.client_account_id = d.client_account_id AND n.phone = d.receiver)
                """
            case .listedOfWindow:
                """
                d.window_id = $1 AND d.state = 'pending'
                AND EXISTS (SELECT 1 FROM callwindow.do_not_contact n WHERE n.client_account_id = d.client_account_id AND n.phone = d.receiver)
                """
            }
        }

        var id: any PostgresEncodable {
            switch self {
            case .endedPendingOfAccounts(let accounts): accounts
            case .listedOfAccount(let account): account
            case .pendingOfWindow(let id), .pendingOfCampaign(let id), .removedFromCampaign(let id), .listedOfWindow(let id): id
            }
        }
    }

    /// Moves the deliveries of `scope` to a final state without an attempt, with audit rows and
    /// window counters, in one statement.
    func finish(_ scope: FinishScope, state: DeliveryState, reason: String,
                        now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await finishByAccount(scope, state: state, reason: reason, now: now, on: connection).values.reduce(0, +)
    }

    /// `finish`, counted per client account (accounts with none finished are absent).
    func finishByAccount(_ scope: FinishScope, state: DeliveryState, reason: String,
                         now: Int64, on connection: PostgresConnection) async throws -> [UUID: Int] {
        let condition = scope.condition
        let parameters: [any PostgresEncodable] = [scope.id, now]
        let rows = try await connection.query(
            """
            WITH finished AS (
              UPDATE callwindow.deliveries d SET state = $3, outcome = $3, reason = $4, finished_at = callwindow.at_ms($2),
                     lease_owner = NULL, lease_expires_at = NULL
              WHERE \(condition)
              RETURNING d.*
            ), audit AS (
              INSERT INTO callwindow.push_attempts (attempted_at, client_account_id, campaign_id, window_id, delivery_id, caller, receiver,
                starts_at, ends_at, label_id, label_name, call_reason, transport, outcome, reason, instance)
              SELECT callwindow.at_ms($2), client_account_id, campaign_id, window_id, id, caller, receiver, starts_at, ends_at,
                     label_id, label_name, call_reason, $5, $3, $4, $6
              FROM finished
            ), counted AS (
              UPDATE callwindow.windows w
              SET expired = w.expired + CASE WHEN $3 = 'expired' THEN f.n ELSE 0 END,
                  cancelled = w.cancelled + CASE WHEN $3 = 'cancelled' THEN f.n ELSE 0 END,
                  suppressed = w.suppressed + CASE WHEN $3 = 'suppressed' THEN f.n ELSE 0 END
              FROM (SELECT window_id, count(*) AS n FROM finished GROUP BY window_id) f
              WHERE w.id = f.window_id
            )
            SELECT client_account_id AS a, count(*) AS n FROM finished GROUP BY 1
            """, parameters: parameters + [state.rawValue, reason, transport.rawValue, instance])
        var counts: [UUID: Int] = [:]
        for row in rows { counts[try row.decode("a", as: UUID.self)] = try row.decode("n", as: Int.self) }
        return counts
    }

    /// Deliveries of an account still to push: pending or in flight.
    public func queueDepth(clientAccountID: UUID, on connection: PostgresConnection) async throws -> Int {
        try await queueDepths(clientAccountIDs: [clientAccountID], on: connection)[clientAccountID] ?? 0
    }

    /// `queueDepth` of every account of `clientAccountIDs`, in one statement (accounts with an
    /// empty queue are absent).
    public func queueDepths(clientAccountIDs: [UUID], on connection: PostgresConnection) async throws -> [UUID: Int] {
        let rows = try await connection.query(
            """
            SELECT client_account_id AS a, count(*) AS n FROM callwindow.deliveries
            WHERE client_account_id = ANY($1::uuid[]) AND state IN ('pending', 'in_flight') GROUP BY 1
            """, clientAccountIDs)
        var depths: [UUID: Int] = [:]
        for row in rows { depths[try row.decode("a", as: UUID.self)] = try row.decode("n", as: Int.self) }
        return depths
    }

    /// Final deliveries leave the queue once their window has ended (the audit keeps them).
    @discardableResult
    public func cleanUp(clientAccountID: UUID, now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await cleanUp(clientAccountIDs: [clientAccountID], now: now, on: connection)
    }

    /// `cleanUp` for every account of `clientAccountIDs` in one statement.
    @discardableResult
    public func cleanUp(clientAccountIDs: [UUID], now: Int64, on connection: PostgresConnection) async throws -> Int {
        try await connection.execute(
            """
            DELETE FROM callwindow.deliveries
            WHERE client_account_id = ANY($1::uuid[]) AND state IN ('accepted', 'rejected', 'expired', 'cancelled')
              AND ends_at <= callwindow.at_ms($2)
            """, clientAccountIDs, now)
    }

    /// Creates this month's audit partition and the next `monthsAhead` ones.
    @discardableResult
    public func ensureAuditPartitions(now: Int64, monthsAhead: Int = 2, on connection: PostgresConnection) async throws -> Int {
        try await connection.query("SELECT callwindow.ensure_push_attempt_partitions(callwindow.at_ms($1), $2::int4) AS n", now, monthsAhead)[0].decode("n")
    }
}
