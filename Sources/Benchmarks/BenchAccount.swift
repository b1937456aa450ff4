public import CallRecordAPI
public import Foundation
import Planning
import Processes
public import Sandbox

/// The account a benchmark pushes for.
public struct BenchAccount: Sendable {
    public var clientAccountID: UUID
    public var key: APIKey
    public var labelID: UUID

    /// From `CALLWINDOW_BENCH_*`, defaulting to the demo account of config/sandbox.yaml.
    public static func fromEnvironment() -> BenchAccount {
        let env = ProcessInfo.processInfo.environment
        func uuid(_ name: String, _ fallback: String) -> UUID {
            env[name].flatMap(UUID.init(uuidString:)) ?? UUID(uuidString: fallback)!
        }
        return BenchAccount(
            clientAccountID: uuid("CALLWINDOW_BENCH_CLIENT_ACCOUNT_ID", "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"),
            key: APIKey(
                keyID: uuid("CALLWINDOW_BENCH_KEY_ID", "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0"),
                apiKey: env["CALLWINDOW_BENCH_API_KEY"] ?? "2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1"
            ),
            labelID: uuid("CALLWINDOW_BENCH_LABEL_ID", "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01")
        )
    }
}

extension BenchAccount {
    /// A fresh account with a random key and one dynamic label, for an in-process sandbox.
    public static func random() -> BenchAccount {
        BenchAccount(clientAccountID: UUID(), key: APIKey(keyID: UUID(), apiKey: UUID().uuidString.lowercased()), labelID: UUID())
    }

    /// An in-process sandbox on a free port that knows this account and its label.
    public func inProcessSandbox(enforceLimits: Bool) throws -> SandboxServer {
        try Self.inProcessSandbox(for: [self], enforceLimits: enforceLimits)
    }

    /// An in-process sandbox on a free port that knows every account of `accounts` and its label.
    public static func inProcessSandbox(for accounts: [BenchAccount], enforceLimits: Bool) throws -> SandboxServer {
        var limits = SandboxConfiguration.Limits()
        limits.enforce = enforceLimits
        return try SandboxServer(
            configuration: SandboxConfiguration(
                clients: accounts.map { account in
                    .init(
                        clientAccountID: account.clientAccountID,
                        apiKeys: [.init(keyID: account.key.keyID, apiKey: account.key.apiKey)],
                        labels: [.init(id: account.labelID, name: "Bench", isDynamic: true)]
                    )
                },
                limits: limits
            ),
            clock: SystemClock(), port: 0
        )
    }
}

extension BenchAccount {
    /// The account as a `callwindow sandbox` configuration file (YAML), limits on or off.
    public func sandboxConfigurationYAML(enforceLimits: Bool) -> String {
        """
        clients:
          - client_account_id: \(clientAccountID.uuidString.lowercased())
            api_keys:
              - {key_id: \(key.keyID.uuidString.lowercased()), api_key: \(key.apiKey)}
            labels:
              - {id: \(labelID.uuidString.lowercased()), name: Bench, label_type: dynamic}
        limits:
          enforce: \(enforceLimits)

        """
    }
}

/// The migrations folder for the benches: $CALLWINDOW_SQL_DIR, else sql/ found above the
/// executable or the working folder.
public func benchSQLDirectory() -> URL {
    if let path = ProcessInfo.processInfo.environment["CALLWINDOW_SQL_DIR"], !path.isEmpty {
        return URL(fileURLWithPath: path)
    }
    return findUpwards("sql/001_campaign_schema.sql")?.deletingLastPathComponent() ?? URL(fileURLWithPath: "sql")
}

