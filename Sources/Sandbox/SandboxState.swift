import CallRecordAPI
import Foundation
import Planning

// The sandbox's mutable state — tokens, their sliding windows, the mint budget, counters — as a
// plain value with no I/O and no clock: every operation takes `now`. The server holds it in one
// `Mutex` for a few microseconds per request (lookup, window update, counters) and never across
// I/O: body reading, decoding, validation, the record file and the answer all happen outside.
//
// Limits ("accepted" = admitted by the limiter):
// - a push at `t` is refused (429, not applied) when its token had `limit` admitted pushes of
//   the same kind in `(t - 1 s, t]` (real-time) or `(t - 60 s, t]` (batch). Every push that
//   passes the limiter counts, whatever its answer afterwards (400, fault, 200): the real
//   service cannot know a record is bad before it spends the request on it.
// - a mint at `t` is refused when `tokens_per_window` successful mints happened in
//   `(t - token_window_seconds, t]` (per account, or per key with `mint_limit_scope: key`);
//   refused and failed mints do not count.
// - a token is valid in `[minted, minted + token_ttl_seconds)`; revoked tokens never again.
// - `enforce: false` lifts every limit but keeps the counting (stats, `peak_1s`).

/// What the sandbox knows about one client account, immutable after start.
struct ClientInfo: Sendable {
    let id: UUID
    let idText: String
    /// key_id (lowercased) → api_key.
    let keys: [String: String]
    /// Labels by id, as the validator sees them.
    let labels: [UUID: LabelInfo]
    /// Labels in configuration order, for listing.
    let listing: [CallRecordAPI.Label]

    init(_ client: SandboxConfiguration.Client) {
        id = client.clientAccountID
        idText = client.clientAccountID.uuidString.lowercased()
        var keys: [String: String] = [:]
        for key in client.apiKeys {
            keys[key.keyID.uuidString.lowercased()] = key.apiKey
        }
        self.keys = keys
        var labels: [UUID: LabelInfo] = [:]
        for label in client.labels {
            labels[label.id] = LabelInfo(id: label.id, clientAccountID: client.clientAccountID, name: label.name, isDynamic: label.isDynamic)
        }
        self.labels = labels
        listing = client.labels.map {
            CallRecordAPI.Label(id: $0.id, name: $0.name, labelType: $0.isDynamic ? "dynamic" : "static", category: "sandbox")
        }
    }
}

/// Which limiter a push goes through.
enum PushKind: Sendable {
    case realtime
    case batch
}

/// Per-token counters, kept after the token expires (stats still show it).
final class TokenCounters {
    var requests = 0
    var accepted = 0
    var peak1s = 0
    var batchRequests = 0
}

/// One live token. A class so the sliding windows are updated in place (no copy-on-write of
/// the rings when the dictionary is mutated).
final class TokenEntry {
    let clientAccountID: UUID
    let fingerprint: String
    let expiresAt: Int64
    var revoked = false
    var realtime = SlidingWindow(length: 1_000, capacity: 128)
    var batch = SlidingWindow(length: 60_000, capacity: 64)
    let counters: TokenCounters

    init(clientAccountID: UUID, fingerprint: String, expiresAt: Int64, counters: TokenCounters) {
        self.clientAccountID = clientAccountID
        self.fingerprint = fingerprint
        self.expiresAt = expiresAt
        self.counters = counters
    }
}

/// Outcome of the limiter and authentication for one push.
enum Admission: Sendable {
    case unauthorized
    case storm
    case rateLimited
    case admitted(fingerprint: String, sequence: UInt64)
}

/// Outcome of one mint request.
enum MintDecision: Sendable {
    case invalid(String)
    case wrongKey
    case limited
    case minted(token: String)
}

struct SandboxState {
    let limits: SandboxConfiguration.Limits
    let plan: FaultPlan
    private var tokens: [String: TokenEntry] = [:]
    private var counters: [String: TokenCounters] = [:]
    private var mintWindows: [UUID: SlidingWindow] = [:]
    private var stats = SandboxStats()
    private var lastNow: Int64 = .min
    private var pushSequence: UInt64 = 0
    /// End (epoch ms, exclusive) of a storm started through `POST /sandbox/storm`.
    private var stormUntil: Int64 = .min

    init(limits: SandboxConfiguration.Limits, plan: FaultPlan) {
        self.limits = limits
        self.plan = plan
    }

    /// `now`, never earlier than a previous call's (a wall clock may step back).
    private mutating func monotonic(_ now: Int64) -> Int64 {
        lastNow = max(lastNow, now)
        return lastNow
    }

    // MARK: Requests that never reach a token

    mutating func countNotFound() {
        stats.requests += 1
        stats.notFound += 1
    }

    mutating func countRejected(_ reason: String, records: Int = 1) {
        stats.rejected[reason, default: 0] += records
    }

    // MARK: Minting

    /// Counts a mint refused before its key was looked at (missing header or body).
    mutating func countFailedMint() {
        stats.requests += 1
        stats.mintsFailed += 1
    }

    /// Mints a token for `client` with the key pair, if it is right and the budget allows.
    mutating func mint(client: ClientInfo, keyID: String?, apiKey: String?, now: Int64) -> MintDecision {
        let now = monotonic(now)
        stats.requests += 1
        guard let keyID, !keyID.isEmpty else {
            stats.mintsFailed += 1
            return .invalid("key_id is required")
        }
        guard let apiKey, !apiKey.isEmpty else {
            stats.mintsFailed += 1
            return .invalid("api_key is required")
        }
        guard let keyUUID = UUID(uuidString: keyID) else {
            stats.mintsFailed += 1
            return .invalid("key_id must be a UUID")
        }
        guard client.keys[keyUUID.uuidString.lowercased()] == apiKey else {
            stats.mintsFailed += 1
            stats.unauthorized += 1
            return .wrongKey
        }
        let scope = limits.mintLimitScope == .account ? client.id : keyUUID
        var window = mintWindows.removeValue(forKey: scope) ?? SlidingWindow(length: limits.tokenWindowSeconds * 1000)
        defer { mintWindows[scope] = window }
        guard window.admit(at: now, limit: limits.enforce ? limits.tokensPerWindow : nil) else {
            stats.mintsRefused += 1
            stats.rateLimited += 1
            return .limited
        }
        let token = Self.newToken()
        let fingerprint = TokenFingerprint.of(token)
        let tokenCounters = TokenCounters()
        counters[fingerprint] = tokenCounters
        tokens[token] = TokenEntry(
            clientAccountID: client.id, fingerprint: fingerprint,
            expiresAt: now + limits.tokenTTLSeconds * 1000, counters: tokenCounters
        )
        stats.tokensMinted += 1
        return .minted(token: token)
    }

    private static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".unicodeScalars)
        var token = "sbx."
        for _ in 0..<48 {
            token.unicodeScalars.append(digits[Int(generator.next() & 0xF)])
        }
        return token
    }

    // MARK: Pushes

    /// Authenticates and rate-limits one push of `kind` for `client`.
    mutating func admit(_ kind: PushKind, client: UUID, bearer: String?, now: Int64) -> Admission {
        let now = monotonic(now)
        stats.requests += 1
        guard let entry = validEntry(bearer, client: client, now: now) else {
            stats.unauthorized += 1
            return .unauthorized
        }
        if plan.inStorm(now: now) || now < stormUntil {
            stats.rateLimited += 1
            stats.stormRefusals += 1
            return .storm
        }
        let admitted: Bool
        switch kind {
        case .realtime:
            admitted = entry.realtime.admit(at: now, limit: limits.enforce ? limits.realtimeRequestsPerSecondPerToken : nil)
            if admitted {
                entry.counters.requests += 1
                entry.counters.peak1s = max(entry.counters.peak1s, entry.realtime.count)
            }
        case .batch:
            admitted = entry.batch.admit(at: now, limit: limits.enforce ? limits.batchRequestsPerMinutePerToken : nil)
            if admitted { entry.counters.batchRequests += 1 }
        }
        guard admitted else {
            stats.rateLimited += 1
            return .rateLimited
        }
        pushSequence += 1
        return .admitted(fingerprint: entry.fingerprint, sequence: pushSequence)
    }

    /// Authenticates a read (labels, batch status): not rate-limited.
    mutating func authenticate(client: UUID, bearer: String?, now: Int64) -> Bool {
        let now = monotonic(now)
        stats.requests += 1
        guard validEntry(bearer, client: client, now: now) != nil else {
            stats.unauthorized += 1
            return false
        }
        return true
    }

    private mutating func validEntry(_ bearer: String?, client: UUID, now: Int64) -> TokenEntry? {
        guard let bearer, let entry = tokens[bearer] else { return nil }
        if now >= entry.expiresAt {
            tokens[bearer] = nil
            return nil
        }
        guard !entry.revoked, entry.clientAccountID == client else { return nil }
        return entry
    }

    /// Records the end of an admitted push: records accepted, rejection reasons, fault.
    mutating func finish(fingerprint: String, accepted: Int, fault: Fault) {
        stats.accepted += accepted
        counters[fingerprint]?.accepted += accepted
        switch fault {
        case .none: break
        case .serverError(let status): stats.faults["http_\(status)", default: 0] += 1
        case .reset: stats.faults["reset", default: 0] += 1
        case .timeout: stats.faults["timeout", default: 0] += 1
        }
    }

    mutating func countBatch(records: Int) {
        stats.batches += 1
        stats.batchRecords += records
    }

    // MARK: Sandbox controls

    /// Revokes every live token, or those with `fingerprint`; returns how many.
    /// Starts a rate-limit storm at `now` lasting `milliseconds`: every push is answered 429
    /// until then (`POST /sandbox/storm`), so a test or the reliability suite can count on one.
    mutating func startStorm(now: Int64, milliseconds: Int64) {
        let now = monotonic(now)
        stormUntil = max(stormUntil, now + max(0, milliseconds))
    }

    mutating func endStorm() {
        stormUntil = .min
    }

    mutating func revoke(fingerprint: String?) -> Int {
        var count = 0
        for entry in tokens.values where !entry.revoked && (fingerprint == nil || entry.fingerprint == fingerprint) {
            entry.revoked = true
            count += 1
        }
        stats.revoked += count
        return count
    }

    /// A copy of the counters.
    func snapshot() -> SandboxStats {
        var copy = stats
        for (fingerprint, counter) in counters {
            copy.tokens[fingerprint] = SandboxStats.TokenStats(
                accepted: counter.accepted, requests: counter.requests, peak1s: counter.peak1s, batchRequests: counter.batchRequests
            )
        }
        return copy
    }
}

/// The sandbox's counters, as `GET /sandbox/stats` shows them.
public struct SandboxStats: Sendable, Hashable, Codable {
    /// Every request to an API endpoint (not `/sandbox/*`).
    public var requests = 0
    /// Records accepted (real-time 200s, accepted batch records, applied-then-timed-out pushes).
    public var accepted = 0
    /// Records refused, by reason (`<field>: <rule>`).
    public var rejected: [String: Int] = [:]
    /// 429 answers: limiter, storm and mint budget.
    public var rateLimited = 0
    /// 401 answers.
    public var unauthorized = 0
    /// 404 answers.
    public var notFound = 0
    /// Successful mints.
    public var tokensMinted = 0
    /// Mints refused by the budget (429).
    public var mintsRefused = 0
    /// Mints with a missing or wrong key (400/401).
    public var mintsFailed = 0
    /// 429 answers caused by a rate-limit storm.
    public var stormRefusals = 0
    /// Injected faults by kind: `http_500`, `http_503`, `reset`, `timeout`.
    public var faults: [String: Int] = [:]
    /// Batch requests accepted.
    public var batches = 0
    /// Records in accepted batch requests (valid or not).
    public var batchRecords = 0
    /// Tokens revoked through `/sandbox/revoke`.
    public var revoked = 0
    /// Per token fingerprint.
    public var tokens: [String: TokenStats] = [:]

    /// Creates empty counters.
    public init() {}

    /// Counters of one token.
    public struct TokenStats: Sendable, Hashable, Codable {
        /// Records accepted with this token.
        public var accepted: Int
        /// Real-time pushes admitted by the limiter.
        public var requests: Int
        /// Most real-time pushes admitted in any 1 s window `(t - 1 s, t]`.
        public var peak1s: Int
        /// Batch requests admitted by the limiter.
        public var batchRequests: Int

        enum CodingKeys: String, CodingKey {
            case accepted, requests
            case peak1s = "peak_1s"
            case batchRequests = "batch_requests"
        }
    }

    enum CodingKeys: String, CodingKey {
        case requests, accepted, rejected, unauthorized, faults, batches, revoked, tokens
        case rateLimited = "rate_limited"
        case notFound = "not_found"
        case tokensMinted = "tokens_minted"
        case mintsRefused = "mints_refused"
        case mintsFailed = "mints_failed"
        case stormRefusals = "storm_refusals"
        case batchRecords = "batch_records"
    }
}
