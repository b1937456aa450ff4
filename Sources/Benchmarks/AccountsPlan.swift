public import Planning

/// How `callwindow bench accounts` sets every account's window so that the sum of the work fits.
///
/// Each account's own limit is `tokens × per-token rate` (100 records/s per v1 token), but the
/// accounts share one daemon and one database, whose rate — the engine's — is far below
/// `accounts × tokens × 100` (100 accounts at 1 token would ask for 10,000 records/s). The
/// daemon plans each account as if it were alone, at `scheduler.utilisation` (0.8) of its API
/// rate. The bench instead plans each account at its even share of `engineRate`, when that is
/// lower: the planning utilisation becomes `engineRate / (accounts × tokens × per-token rate)`.
/// Each window's deadline is then the push time at that rate plus the push margin after the
/// INSERT (its push, planned as late as possible, starts about now), and every account's work
/// fits before its deadline exactly when the daemon sustains `engineRate` with every account
/// pushing at once.
public struct AccountsPlan: Sendable, Equatable {
    /// Client accounts on the daemon.
    public var accounts: Int
    /// Records in each account's window.
    public var recordsPerAccount: Int
    /// Tokens per account (`tokens.max`).
    public var tokensPerAccount: Int
    /// The transport pushed with.
    public var transport: Transport
    /// Records/s the whole daemon is planned to sustain, shared evenly by the accounts.
    public var engineRate: Double
    /// The daemon's own planning share of the API's rate (`scheduler.utilisation`).
    public var daemonUtilisation: Double
    /// Time planned on top of each window's records (`scheduler.push_margin_seconds`), ms.
    public var marginMs: Int64

    /// A plan for the given load; utilisation and margin default to the daemon's.
    public init(accounts: Int, recordsPerAccount: Int, tokensPerAccount: Int, transport: Transport, engineRate: Double,
                daemonUtilisation: Double = 0.8, marginMs: Int64 = 10_000) {
        self.accounts = accounts
        self.recordsPerAccount = recordsPerAccount
        self.tokensPerAccount = tokensPerAccount
        self.transport = transport
        self.engineRate = engineRate
        self.daemonUtilisation = daemonUtilisation
        self.marginMs = marginMs
    }

    /// One account's ceiling at the API's limits (records/s).
    public var accountCeiling: Double {
        Capacity(tokens: tokensPerAccount, transport: transport, utilisation: 1).recordsPerSecond
    }

    /// The share of the API's rate each account's plan assumes: the daemon's own, or its even
    /// share of `engineRate` when that is lower.
    public var utilisation: Double {
        let ceiling = Double(accounts) * accountCeiling
        guard ceiling > 0, engineRate > 0 else { return daemonUtilisation }
        return min(daemonUtilisation, engineRate / ceiling)
    }

    /// The capacity each account's window is planned with (what `Planner` is given).
    public var capacity: Capacity {
        Capacity(tokens: tokensPerAccount, transport: transport, utilisation: utilisation, startupMs: marginMs)
    }

    /// From the start of each account's push to its deadline (ms): its records at the planned
    /// rate plus the margin.
    public var pushMs: Int64 { capacity.pushDuration(records: recordsPerAccount) }

    /// Every account's records together.
    public var totalRecords: Int { accounts * recordsPerAccount }
}
