import Foundation
import Ledger
import Postgres
import Store
import TestSupport
import Synchronization
import Testing

/// The ledger the token pool relies on, checked against both implementations: the PostgreSQL
/// `TokenStore` and the `MemoryTokenLedger` the pool's own tests use. Every rule is asserted
/// here once, so the memory ledger cannot drift from what the database does.
enum LedgerKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case postgres, memory

    var testDescription: String { rawValue }

    /// A ledger of this kind; `close` releases what it holds.
    func make() async throws -> (ledger: any TokenLedger, close: @Sendable () async -> Void) {
        switch self {
        case .memory:
            return (MemoryTokenLedger(), {})
        case .postgres:
            let configuration = try TestDatabase.configuration()
            let connection = try await PostgresConnection.connect(configuration)
            try await TestDatabase.migrate(connection)
            await connection.close()
            let pool = PostgresPool(configuration: configuration, maxConnections: 8)
            let cipher = try TokenCipher.fromEnvironment(variable: "K", environment: ["K": TokenCipher.generateKeyBase64()])
            return (TokenStore(pool: pool, cipher: cipher), { await pool.close() })
        }
    }
}

@Suite("Token ledger conformance: PostgreSQL and memory", .timeLimit(.minutes(2)))
struct TokenLedgerConformanceTests {
    static let now: Int64 = 1_800_000_000_000
    static let window: Int64 = 1_800_000

    @Test("concurrent reservations never exceed the budget, and a failed mint still counts", arguments: LedgerKind.allCases)
    func mintBudget(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        let now = Self.now
        let results = try await withThrowingTaskGroup(of: MintReservation.self) { group in
            for caller in 0..<30 {
                group.addTask {
                    let at = now + Int64(caller)
                    return try await ledger.reserveMint(clientAccountID: client, instance: "caller-\(caller)", now: at, windowMs: Self.window) { recent in
                        recent.filter { $0 > at - Self.window }.count < 10 ? nil : (recent.sorted()[recent.count - 10] + Self.window)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let reserved = results.compactMap { if case .reserved(let id) = $0 { id } else { nil } }
        #expect(reserved.count == 10)
        #expect(Set(reserved).count == 10, "distinct ledger ids")
        for case .refused(let nextAt) in results {
            #expect(nextAt >= now + Self.window && nextAt < now + Self.window + 30)
        }
        try await ledger.finishMint(id: reserved[0], fingerprint: nil, expiresAt: nil, answeredAt: now + 5)
        let recent = try await ledger.recentMints(clientAccountID: client, now: now + 100, windowMs: Self.window)
        #expect(recent.count == 10)
        #expect(recent == recent.sorted(), "oldest first")
        // Once the window has passed, the budget is free again; another account never shares it.
        #expect(try await ledger.recentMints(clientAccountID: client, now: now + Self.window + 30, windowMs: Self.window).isEmpty)
        #expect(try await ledger.recentMints(clientAccountID: UUID(), now: now + 100, windowMs: Self.window).isEmpty)
        await close()
    }

    @Test("a mint counts from before its request until a window after its answer", arguments: LedgerKind.allCases)
    func countedUntilAfterTheAnswer(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        guard case .reserved(let id) = try await ledger.reserveMint(clientAccountID: client, instance: "slow answer", now: Self.now, windowMs: Self.window, decide: { _ in nil }) else {
            Issue.record("the reservation was refused")
            return
        }
        // Counted while the request is out...
        #expect(try await ledger.recentMints(clientAccountID: client, now: Self.now + 4_000, windowMs: Self.window) == [Self.now])
        // ...and, answered 5 s later, until a window after the answer, not after the request.
        try await ledger.finishMint(id: id, fingerprint: "0123456789ab", expiresAt: Self.now + 3_600_000, answeredAt: Self.now + 5_000)
        #expect(try await ledger.recentMints(clientAccountID: client, now: Self.now + Self.window + 4_999, windowMs: Self.window) == [Self.now + 5_000])
        #expect(try await ledger.recentMints(clientAccountID: client, now: Self.now + Self.window + 5_000, windowMs: Self.window).isEmpty)
        // An answer stamped earlier than the reservation (it cannot be) never moves it back.
        guard case .reserved(let second) = try await ledger.reserveMint(clientAccountID: client, instance: "i", now: Self.now + 10_000, windowMs: Self.window, decide: { _ in nil }) else {
            Issue.record("the second reservation was refused")
            return
        }
        try await ledger.finishMint(id: second, fingerprint: nil, expiresAt: nil, answeredAt: Self.now + 9_000)
        #expect(try await ledger.recentMints(clientAccountID: client, now: Self.now + 10_001, windowMs: Self.window) == [Self.now + 5_000, Self.now + 10_000])
        await close()
    }

    @Test("a mint recorded at a later instant (a clock running ahead) still counts", arguments: LedgerKind.allCases)
    func aheadOfTime(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        _ = try await ledger.reserveMint(clientAccountID: client, instance: "ahead", now: Self.now + 60_000, windowMs: Self.window) { _ in nil }
        let seen = Mutex<[Int64]>([])
        _ = try await ledger.reserveMint(clientAccountID: client, instance: "behind", now: Self.now, windowMs: Self.window) { recent in
            seen.withLock { $0 = recent }
            return nil
        }
        #expect(seen.withLock { $0 } == [Self.now + 60_000])
        await close()
    }

    @Test("concurrent growth mints never give the account more than the cap; stored, pending, revoked and expiring tokens are counted right",
          arguments: LedgerKind.allCases)
    func liveTokenCap(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        let now = Self.now
        // One stored token (unleased), one expired, one revoked, one about to expire: one counts.
        try await ledger.insert(clientAccountID: client, secret: "secret-token-1", fingerprint: "aaaaaaaaaaaa", mintedAt: now,
                                expiresAt: now + 3_600_000, owner: "A", leaseExpiresAt: now + 15_000)
        try await ledger.release(clientAccountID: client, fingerprint: "aaaaaaaaaaaa", owner: "A", now: now)
        try await ledger.insert(clientAccountID: client, secret: "secret-token-2", fingerprint: "bbbbbbbbbbbb", mintedAt: now - 3_600_000,
                                expiresAt: now - 1, owner: "A", leaseExpiresAt: now - 1)
        try await ledger.insert(clientAccountID: client, secret: "secret-token-3", fingerprint: "cccccccccccc", mintedAt: now,
                                expiresAt: now + 3_600_000, owner: "A", leaseExpiresAt: now + 15_000)
        try await ledger.revoke(clientAccountID: client, fingerprint: "cccccccccccc", now: now)
        // One valid now but not past the cap's validUntil (due for refresh): it does not count.
        try await ledger.insert(clientAccountID: client, secret: "secret-token-4", fingerprint: "dddddddddddd", mintedAt: now - 3_500_000,
                                expiresAt: now + 30_000, owner: "A", leaseExpiresAt: now + 15_000)
        // Ten instances grow at once with a cap of 3: two mints are reserved (pending ones count), eight refused.
        let results = try await withThrowingTaskGroup(of: MintReservation.self) { group in
            for caller in 0..<10 {
                group.addTask {
                    try await ledger.reserveMint(clientAccountID: client, instance: "grower-\(caller)", now: now, windowMs: Self.window,
                                                 cap: TokenCap(max: 3, validUntil: now + 60_000)) { _ in nil }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { if case .reserved = $0 { true } else { false } }.count == 2)
        #expect(results.filter { $0 == .atCapacity(live: 3) }.count == 8)
        // Without a cap (a refresh), the budget alone decides.
        let refresh = try await ledger.reserveMint(clientAccountID: client, instance: "refresh", now: now, windowMs: Self.window) { _ in nil }
        if case .reserved = refresh {} else { Issue.record("a refresh is not capped: \(refresh)") }
        await close()
    }

    @Test("a lease is taken over only after it lapsed; renewal by its owner only; release frees it; revoked is never leased",
          arguments: LedgerKind.allCases)
    func leases(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        let now = Self.now
        try await ledger.insert(clientAccountID: client, secret: "secret-token-1", fingerprint: "aaaaaaaaaaaa", mintedAt: now,
                                expiresAt: now + 3_600_000, owner: "A", leaseExpiresAt: now + 15_000)
        #expect(try await ledger.lease(clientAccountID: client, owner: "B", now: now + 14_999, leaseMs: 15_000, validUntil: now + 60_000) == nil,
                "A's lease has 1 ms left")
        let elsewhere = try await ledger.leasedElsewhere(clientAccountID: client, owner: "B", now: now + 1, validUntil: now + 60_000)
        #expect(elsewhere.map(\.fingerprint) == ["aaaaaaaaaaaa"])
        #expect(elsewhere.map(\.leaseExpiresAt) == [now + 15_000])
        #expect(try await ledger.leasedElsewhere(clientAccountID: client, owner: "A", now: now + 1, validUntil: now + 60_000).isEmpty,
                "its own lease is not elsewhere")
        #expect(try await ledger.renew(clientAccountID: client, fingerprints: ["aaaaaaaaaaaa"], owner: "B", now: now + 10_000, leaseMs: 15_000) == [],
                "only the owner renews")
        #expect(try await ledger.renew(clientAccountID: client, fingerprints: ["aaaaaaaaaaaa"], owner: "A", now: now + 10_000, leaseMs: 15_000)
                == ["aaaaaaaaaaaa"])
        #expect(try await ledger.lease(clientAccountID: client, owner: "B", now: now + 20_000, leaseMs: 15_000, validUntil: now + 60_000) == nil)
        let taken = try await ledger.lease(clientAccountID: client, owner: "B", now: now + 25_000, leaseMs: 15_000, validUntil: now + 60_000)
        #expect(taken?.secret == "secret-token-1")
        #expect(taken?.fingerprint == "aaaaaaaaaaaa")
        #expect(taken?.leaseExpiresAt == now + 40_000)
        #expect(taken?.expiresAt == now + 3_600_000)
        #expect(taken?.quietSince == now + 25_000, "A could send until its lease lapsed")
        #expect(try await ledger.renew(clientAccountID: client, fingerprints: ["aaaaaaaaaaaa"], owner: "A", now: now + 26_000, leaseMs: 15_000) == [],
                "a lapsed lease is lost")
        try await ledger.release(clientAccountID: client, fingerprint: "aaaaaaaaaaaa", owner: "A", now: now)
        #expect(try await ledger.lease(clientAccountID: client, owner: "A", now: now + 26_500, leaseMs: 15_000, validUntil: now + 60_000) == nil,
                "a release by another owner changes nothing")
        try await ledger.release(clientAccountID: client, fingerprint: "aaaaaaaaaaaa", owner: "B", now: now + 26_800)
        #expect(try await ledger.lease(clientAccountID: client, owner: "A", now: now + 27_000, leaseMs: 15_000, validUntil: now + 3_600_000) == nil,
                "too short-lived for what is asked")
        let again = try await ledger.lease(clientAccountID: client, owner: "A", now: now + 27_000, leaseMs: 15_000, validUntil: now + 60_000)
        #expect(again?.quietSince == now + 26_800, "B sent nothing after its release")
        try await ledger.revoke(clientAccountID: client, fingerprint: "aaaaaaaaaaaa", now: now + 28_000)
        #expect(try await ledger.lease(clientAccountID: client, owner: "B", now: now + 100_000, leaseMs: 15_000, validUntil: now + 200_000) == nil)
        #expect(try await ledger.renew(clientAccountID: client, fingerprints: ["aaaaaaaaaaaa"], owner: "A", now: now + 28_001, leaseMs: 15_000) == [])
        await close()
    }

    @Test("the latest-expiring token is leased first; excluded ones never; a second insert of a fingerprint changes nothing",
          arguments: LedgerKind.allCases)
    func leaseOrder(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        let now = Self.now
        for (n, life) in [(1, 1_000_000), (2, 3_000_000), (3, 2_000_000)] {
            try await ledger.insert(clientAccountID: client, secret: "tok-\(n)", fingerprint: String(repeating: "\(n)", count: 12),
                                    mintedAt: now, expiresAt: now + Int64(life), owner: "old", leaseExpiresAt: now)
        }
        try await ledger.insert(clientAccountID: client, secret: "other", fingerprint: "222222222222",
                                mintedAt: now, expiresAt: now + 9_000_000, owner: "x", leaseExpiresAt: now + 9_000_000)
        let first = try await ledger.lease(clientAccountID: client, owner: "p", now: now + 1, leaseMs: 15_000, validUntil: now + 60_000, excluding: [])
        #expect(first?.fingerprint == "222222222222")
        #expect(first?.secret == "tok-2", "the first insert is kept")
        let second = try await ledger.lease(clientAccountID: client, owner: "p", now: now + 1, leaseMs: 15_000, validUntil: now + 60_000,
                                            excluding: ["333333333333"])
        #expect(second?.fingerprint == "111111111111")
        #expect(try await ledger.lease(clientAccountID: client, owner: "p", now: now + 1, leaseMs: 15_000, validUntil: now + 60_000).map(\.fingerprint)
                == "333333333333")
        #expect(try await ledger.deleteExpired(clientAccountID: client, now: now + 1_000_000) == 1)
        #expect(try await ledger.deleteExpired(clientAccountID: client, now: now + 1_000_000) == 0)
        await close()
    }

    @Test("concurrent leasers get distinct tokens", arguments: LedgerKind.allCases)
    func concurrentLeasers(kind: LedgerKind) async throws {
        let (ledger, close) = try await kind.make()
        let client = UUID()
        let now = Self.now
        for n in 0..<3 {
            try await ledger.insert(clientAccountID: client, secret: "tok-\(n)", fingerprint: String(repeating: "\(n)", count: 12),
                                    mintedAt: now, expiresAt: now + 3_600_000, owner: "old", leaseExpiresAt: now)
        }
        let got = try await withThrowingTaskGroup(of: String?.self) { group in
            for n in 0..<8 {
                group.addTask {
                    try await ledger.lease(clientAccountID: client, owner: "p\(n)", now: now + 1, leaseMs: 15_000, validUntil: now + 60_000)?.fingerprint
                }
            }
            return try await group.reduce(into: [String]()) { if let f = $1 { $0.append(f) } }
        }
        #expect(got.count == 3)
        #expect(Set(got).count == 3, "no token leased twice")
        await close()
    }
}
