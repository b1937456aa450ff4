public import Foundation
public import Planning

/// Everything `callwindow` reads from `config/callwindow.yaml`, with documented defaults.
///
/// Every scalar key can be overridden by an environment variable named `CALLWINDOW_` plus the
/// key path upper-cased with `.` → `_` (`database.url` → `CALLWINDOW_DATABASE_URL`). Unknown
/// keys and bad values are start-up errors that name the key. Credentials are never in this
/// file: it names the credentials file (`credentials_file`) or the environment variables that
/// hold them.
public struct Configuration: Codable, Sendable, Equatable {
    public var database = Database()
    public var api = API()
    public var clients: [Client] = []
    /// The credentials file (`CredentialsFile`: each client's API key id and key, mode 0600);
    /// empty means each client names environment variables instead (`key_id_env`,
    /// `api_key_env`). A relative path given in the configuration file is relative to that
    /// file's folder.
    public var credentialsFile = ""
    public var tokens = Tokens()
    public var scheduler = Scheduler()
    public var http = HTTP()
    public var log = Log()

    public init() {}

    enum CodingKeys: String, CodingKey {
        case database, api, clients, credentialsFile = "credentials_file", tokens, scheduler, http, log
    }

    /// Where the database is.
    public struct Database: Codable, Sendable, Equatable {
        /// `postgres://` URL or libpq conninfo; empty means "give --database-url".
        public var url = ""
        /// Connections each process keeps open at most.
        public var poolSize = 8
        enum CodingKeys: String, CodingKey { case url, poolSize = "pool_size" }
    }

    /// The Truecaller for Business API (or the sandbox).
    public struct API: Codable, Sendable, Equatable {
        /// Base URL; the real service is https://enterprise-portal-noneu.truecaller.com.
        public var baseURL = "http://127.0.0.1:8089"
        /// `v1` (the default, real-time), `v2` (real-time) or `batch`.
        public var transport: Transport = .v1
        public var connectTimeoutMs = 3_000
        public var requestTimeoutMs = 10_000
        public var maxConnections = 64
        enum CodingKeys: String, CodingKey {
            case baseURL = "base_url", transport, connectTimeoutMs = "connect_timeout_ms"
            case requestTimeoutMs = "request_timeout_ms", maxConnections = "max_connections"
        }
    }

    /// One client account this instance works for.
    public struct Client: Codable, Sendable, Equatable {
        public var clientAccountID = ""
        /// Name of the environment variable holding the API key id.
        public var keyIDEnv = "TC_KEY_ID"
        /// Name of the environment variable holding the API key.
        public var apiKeyEnv = "TC_API_KEY"
        public init(clientAccountID: String = "", keyIDEnv: String = "TC_KEY_ID", apiKeyEnv: String = "TC_API_KEY") {
            self.clientAccountID = clientAccountID
            self.keyIDEnv = keyIDEnv
            self.apiKeyEnv = apiKeyEnv
        }
        enum CodingKeys: String, CodingKey {
            case clientAccountID = "client_account_id", keyIDEnv = "key_id_env", apiKeyEnv = "api_key_env"
        }
    }

    /// The token pool.
    public struct Tokens: Codable, Sendable, Equatable {
        /// Most tokens one instance leases per client account.
        public var max = 10
        /// Environment variable with the 32-byte token encryption key, base64: tokens are sealed
        /// with it, and opened with it first.
        public var keyEnv = "CALLWINDOW_TOKEN_KEY"
        /// Environment variable with the previous token key during a rotation: tokens it sealed
        /// are still opened, until `callwindow tokens rekey` has sealed them all under `keyEnv`.
        public var oldKeyEnv = "CALLWINDOW_TOKEN_KEY_OLD"
        /// Mints allowed per rolling window, shared by every instance (the API allows 10).
        public var mintBudget = 10
        public var mintWindowSeconds = 1_800
        /// Token lifetime (the API's is 60 minutes).
        public var ttlSeconds = 3_600
        /// Refresh a token this long before it expires.
        public var refreshBeforeSeconds = 300
        /// How long a token lease lasts without renewal (the daemon uses at least four request timeouts).
        public var leaseSeconds = 60
        /// Requests in flight per instance, at most.
        public var maxInFlight = 256
        enum CodingKeys: String, CodingKey {
            case max, keyEnv = "key_env", oldKeyEnv = "old_key_env", mintBudget = "mint_budget", mintWindowSeconds = "mint_window_seconds"
            case ttlSeconds = "ttl_seconds", refreshBeforeSeconds = "refresh_before_seconds"
            case leaseSeconds = "lease_seconds", maxInFlight = "max_in_flight"
        }
    }

    /// The daemon's loops.
    public struct Scheduler: Codable, Sendable, Equatable {
        /// Deliveries are created for windows whose push starts within this horizon.
        public var horizonSeconds = 7_200
        /// The longest an account goes without a planning cycle when no change is notified and
        /// time crosses no window boundary (a fallback: the planner is driven by NOTIFY and by
        /// the plan's own next change).
        public var pollSeconds = 600
        /// Deliveries claimed per batch.
        public var claimBatch = 500
        /// Claimed batches a dispatcher has out at once: 2 lets one be claimed and recorded while
        /// the other is sent, so the pool never waits on the database.
        public var concurrentBatches = 2
        /// How long a claim lasts before the rescuer may return it to the queue.
        public var leaseSeconds = 60
        /// Share of the API's rate the plan assumes (slack for retries).
        public var utilisation = 0.8
        /// Extra time each window's push is planned to take (minting, first claim, a retry).
        public var pushMarginSeconds = 10
        /// SIGTERM grace period.
        public var graceSeconds = 30
        enum CodingKeys: String, CodingKey {
            case horizonSeconds = "horizon_seconds", pollSeconds = "poll_seconds", claimBatch = "claim_batch"
            case concurrentBatches = "concurrent_batches"
            case leaseSeconds = "lease_seconds", utilisation, graceSeconds = "grace_seconds"
            case pushMarginSeconds = "push_margin_seconds"
        }
    }

    /// `/metrics`, `/healthz`, `/readyz` and the dashboard.
    public struct HTTP: Codable, Sendable, Equatable {
        public var host = "127.0.0.1"
        /// 0 picks a free port and logs it.
        public var port = 9464
        /// The environment variable holding the bearer token every page and /metrics then
        /// require; empty means none (allowed only on a loopback host).
        public var authTokenEnv = ""
        /// Whether the dashboard shows pause, resume and cancel buttons (they work only where the
        /// daemon's database role was granted `callwindow_operator`).
        public var actions = false
        enum CodingKeys: String, CodingKey { case host, port, authTokenEnv = "auth_token_env", actions }

        /// Whether `host` only accepts connections from this machine.
        public static func isLoopback(_ host: String) -> Bool {
            let name = host.lowercased()
            if name == "localhost" || name == "::1" || name == "[::1]" { return true }
            // An IPv4 literal in 127.0.0.0/8 only: a host *name* such as 127.example.com is not loopback.
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { part in UInt8(part) != nil }
        }
    }

    /// Logging.
    public struct Log: Codable, Sendable, Equatable {
        /// trace, debug, info, notice, warning, error, critical.
        public var level = "info"
        /// text or json.
        public var format = "text"
    }
}
