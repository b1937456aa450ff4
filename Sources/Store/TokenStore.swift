public import Crypto
public import Foundation
public import Ledger
public import Postgres

/// Encrypts tokens for the token store with AES-GCM; the 32-byte key comes from the environment.
///
/// The ciphertext is bound to the client account and fingerprint (associated data), so a row
/// copied onto another token's row does not decrypt. During a key rotation the cipher also holds
/// the previous key: it seals with the current key only, and opens with the current key first,
/// then the previous one. `description` never shows a key.
public struct TokenCipher: Sendable, CustomStringConvertible {
    private let key: SymmetricKey
    private let previous: SymmetricKey?
    /// The variables the keys come from (the previous one's whether or not it is set), to name in errors.
    private let names: (current: String, previous: String?)

    /// A cipher with a 32-byte key and, during a rotation, the 32-byte key it replaces (accepted
    /// for opening only).
    public init(key: SymmetricKey, previous: SymmetricKey? = nil) throws(StoreError) {
        try self.init(key: key, previous: previous, names: ("CALLWINDOW_TOKEN_KEY", "CALLWINDOW_TOKEN_KEY_OLD"))
    }

    private init(key: SymmetricKey, previous: SymmetricKey?, names: (current: String, previous: String?)) throws(StoreError) {
        guard key.bitCount == 256, previous.map({ $0.bitCount == 256 }) ?? true else {
            throw StoreError(.invalidData, "the token key must be 32 bytes")
        }
        self.key = key
        self.previous = previous
        self.names = names
    }

    /// Reads the key from the environment variable `variable` (base64 of 32 random bytes, as
    /// `openssl rand -base64 32` prints) and, when `oldVariable` is set and not empty, the
    /// previous key from it; the error names the variable, never its value.
    public static func fromEnvironment(
        variable: String = "CALLWINDOW_TOKEN_KEY", oldVariable: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(StoreError) -> TokenCipher {
        guard let text = environment[variable], !text.isEmpty else {
            throw StoreError(.invalidData, "the token key is missing: set \(variable) to 32 random bytes in base64 (openssl rand -base64 32)")
        }
        let key = try decodeKey(text, variable: variable, what: "the token key")
        var previous: SymmetricKey?
        if let oldVariable, let old = environment[oldVariable], !old.isEmpty {
            let decoded = try decodeKey(old, variable: oldVariable, what: "the previous token key")
            // The same key twice is no rotation: nothing more to try.
            if decoded != key { previous = decoded }
        }
        return try TokenCipher(key: key, previous: previous, names: (variable, oldVariable))
    }

    private static func decodeKey(_ text: String, variable: String, what: String) throws(StoreError) -> SymmetricKey {
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw StoreError(.invalidData, "\(what) in \(variable) is malformed: it must be 32 bytes in base64 (openssl rand -base64 32)")
        }
        return SymmetricKey(data: bytes)
    }

    /// A fresh random key in base64, for ephemeral use (the bench).
    public static func generateKeyBase64() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Whether the cipher also opens tokens sealed with a previous key (a rotation is under way).
    public var acceptsPreviousKey: Bool { previous != nil }

    /// Seals `secret` for the row (`clientAccountID`, `fingerprint`), always with the current key.
    public func seal(_ secret: String, clientAccountID: UUID, fingerprint: String) throws -> Data {
        let box = try AES.GCM.seal(Data(secret.utf8), using: key, authenticating: Self.context(clientAccountID, fingerprint))
        guard let combined = box.combined else {
            throw StoreError(.invalidData, "the token could not be encrypted")
        }
        return combined
    }

    /// Opens a sealed token with the current key, else the previous one; throws when neither
    /// opens it or the row was tampered with.
    public func open(_ ciphertext: Data, clientAccountID: UUID, fingerprint: String) throws(StoreError) -> String {
        try openTellingKey(ciphertext, clientAccountID: clientAccountID, fingerprint: fingerprint).secret
    }

    /// `open`, and whether it took the previous key (the row still needs re-sealing).
    func openTellingKey(_ ciphertext: Data, clientAccountID: UUID, fingerprint: String) throws(StoreError) -> (secret: String, previousKey: Bool) {
        let context = Self.context(clientAccountID, fingerprint)
        if let secret = Self.open(ciphertext, key: key, context: context) { return (secret, false) }
        if let previous, let secret = Self.open(ciphertext, key: previous, context: context) { return (secret, true) }
        let keys = previous == nil ? names.current : "\(names.current) or \(names.previous ?? "the previous key")"
        throw StoreError(.invalidData, "stored token \(fingerprint) cannot be decrypted with \(keys): if \(names.current) was changed, "
            + "set \(names.previous ?? "tokens.old_key_env's variable") to the key it was stored under until callwindow tokens rekey has run")
    }

    private static func open(_ ciphertext: Data, key: SymmetricKey, context: Data) -> String? {
        guard let box = try? AES.GCM.SealedBox(combined: ciphertext),
              let plain = try? AES.GCM.open(box, using: key, authenticating: context) else { return nil }
        return String(data: plain, encoding: .utf8)
    }

    private static func context(_ clientAccountID: UUID, _ fingerprint: String) -> Data {
        Data("callwindow-token:\(clientAccountID.uuidString.lowercased()):\(fingerprint)".utf8)
    }

    /// Names the algorithm only, never the key.
    public var description: String { previous == nil ? "TokenCipher(AES-GCM-256)" : "TokenCipher(AES-GCM-256, rotating)" }
}

/// Every statement about tokens: the shared mint ledger and the encrypted, leased token store.
/// All instants are epoch ms passed in by the caller (invariant 6).
public struct TokenStore: TokenLedger {
    private let pool: PostgresPool
    private let cipher: TokenCipher

    /// A store on `pool` sealing tokens with `cipher`.
    public init(pool: PostgresPool, cipher: TokenCipher) {
        self.pool = pool
        self.cipher = cipher
    }

    /// Advisory-lock key of a client account's mint budget: a namespace in the high bits, the
    /// account's first 6 bytes below (collisions only serialise two accounts' mints).
    static func mintLockKey(_ clientAccountID: UUID) -> Int64 {
        let u = clientAccountID.uuid
        let low = [u.0, u.1, u.2, u.3, u.4, u.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int64(bitPattern: (UInt64(0x6D69) << 48) | low)  // "mi"
    }

    /// Checks the rolling budget and, if `decide` allows, records a pending mint — both under a
    /// transaction-scoped advisory lock keyed by the client account, so concurrent callers in
    /// any process never exceed it. `decide` gets the instants of the mints after `now − windowMs`
    /// (failed ones included, and those another instance recorded at a later instant) and returns `nil` to allow or the next possible instant.
    public func reserveMint(
        clientAccountID: UUID, instance: String, now: Int64, windowMs: Int64, cap: TokenCap?,
        decide: @Sendable ([Int64]) -> Int64?
    ) async throws -> MintReservation {
        try await pool.transaction { connection in
            try await connection.execute("SELECT pg_advisory_xact_lock($1)", Self.mintLockKey(clientAccountID))
            if let cap {
                // Under the same lock as the budget: instances growing at once never pass the cap.
                let live = try await connection.query(
                    """
                    SELECT (SELECT count(*) FROM callwindow.tokens
                             WHERE client_account_id = $1 AND revoked_at IS NULL AND expires_at > $2)
                         + (SELECT count(*) FROM callwindow.token_mints
                             WHERE client_account_id = $1 AND outcome = 'pending' AND minted_at > $3) AS n
                    """, clientAccountID, Self.date(cap.validUntil), Self.date(now - Self.pendingMintMs))[0].decode("n", as: Int.self)
                if live >= cap.max { return .atCapacity(live: live) }
            }
            let rows = try await connection.query(
                """
                SELECT minted_at FROM callwindow.token_mints
                WHERE client_account_id = $1 AND minted_at > $2
                ORDER BY minted_at
                """,
                // No upper bound: a mint stamped "later" by an instance whose clock runs ahead
                // still counts, so clock skew can only make the budget stricter, never looser.
                clientAccountID, Self.date(now - windowMs)
            )
            var instants: [Int64] = []
            for row in rows { instants.append(Self.ms(try row.decode("minted_at", as: Date.self))) }
            if let nextAt = decide(instants) {
                return .refused(nextAt: nextAt)
            }
            let inserted = try await connection.query(
                """
                INSERT INTO callwindow.token_mints (client_account_id, minted_at, instance, outcome)
                VALUES ($1, $2, $3, 'pending') RETURNING id
                """,
                clientAccountID, Self.date(now), instance
            )
            guard let row = inserted.first else { throw StoreError(.invalidData, "the mint ledger returned no id") }
            return .reserved(id: try row.decode("id", as: Int64.self))
        }
    }

    /// Records what became of a reserved mint (it keeps counting against the budget either way)
    /// and moves its instant to `answeredAt`: a mint counts from before its request (the
    /// reservation) until one window after its answer, since the API counted it somewhere in
    /// between.
    public func finishMint(id: Int64, fingerprint: String?, expiresAt: Int64?, answeredAt: Int64) async throws {
        try await pool.execute(
            """
            UPDATE callwindow.token_mints SET outcome = $2, fingerprint = $3, expires_at = $4, minted_at = greatest(minted_at, $5)
            WHERE id = $1
            """,
            id, fingerprint == nil ? "failed" : "minted", fingerprint, expiresAt.map(Self.date), Self.date(answeredAt)
        )
    }

    /// Instants of the client account's mints after `now − windowMs`, oldest first (including
    /// any recorded "in the future" by an instance whose clock runs ahead).
    public func recentMints(clientAccountID: UUID, now: Int64, windowMs: Int64) async throws -> [Int64] {
        let rows = try await pool.query(
            "SELECT minted_at FROM callwindow.token_mints WHERE client_account_id = $1 AND minted_at > $2 ORDER BY minted_at",
            clientAccountID, Self.date(now - windowMs)
        )
        var instants: [Int64] = []
        for row in rows { instants.append(Self.ms(try row.decode("minted_at", as: Date.self))) }
        return instants
    }

    /// Stores a freshly minted token, encrypted, leased to `owner` until `leaseExpiresAt`.
    public func insert(
        clientAccountID: UUID, secret: String, fingerprint: String, mintedAt: Int64, expiresAt: Int64,
        owner: String, leaseExpiresAt: Int64
    ) async throws {
        let sealed = try cipher.seal(secret, clientAccountID: clientAccountID, fingerprint: fingerprint)
        try await pool.execute(
            """
            INSERT INTO callwindow.tokens
              (client_account_id, fingerprint, ciphertext, minted_at, expires_at, lease_owner, lease_expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (client_account_id, fingerprint) DO NOTHING
            """,
            clientAccountID, fingerprint, sealed, Self.date(mintedAt), Self.date(expiresAt), owner, Self.date(leaseExpiresAt)
        )
    }

    /// Leases one stored token whose lease is free or expired at `now` (compare-and-set under
    /// `FOR UPDATE SKIP LOCKED`), valid at least until `validUntil`, not revoked and not in
    /// `excluding`; the latest-expiring first. Returns it decrypted, or `nil`.
    ///
    /// A token this process's keys cannot open (sealed by an instance with another
    /// `CALLWINDOW_TOKEN_KEY`, during a rotation) is given back at once, as it was, and the next
    /// one tried; when only such tokens were found, the error says so.
    public func lease(
        clientAccountID: UUID, owner: String, now: Int64, leaseMs: Int64, validUntil: Int64, excluding: [String]
    ) async throws -> StoredToken? {
        var excluded = excluding
        var unreadable: StoreError?
        while true {
            let rows = try await pool.query(
                """
                WITH free AS MATERIALIZED (
                  SELECT fingerprint, greatest(quiet_after, lease_expires_at) AS quiet FROM callwindow.tokens
                  WHERE client_account_id = $1 AND revoked_at IS NULL AND expires_at > $5
                    AND (lease_expires_at IS NULL OR lease_expires_at <= $4)
                    AND NOT (fingerprint = ANY($6))
                  ORDER BY expires_at DESC, fingerprint
                  LIMIT 1
                  FOR UPDATE SKIP LOCKED
                )
                UPDATE callwindow.tokens t SET lease_owner = $2, lease_expires_at = $3
                FROM free
                WHERE t.client_account_id = $1 AND t.fingerprint = free.fingerprint
                  AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= $4)
                RETURNING t.fingerprint, t.ciphertext, t.minted_at, t.expires_at, t.lease_expires_at, free.quiet
                """,
                clientAccountID, owner, Self.date(now + leaseMs), Self.date(now), Self.date(validUntil), excluded
            )
            guard let row = rows.first else {
                if let unreadable { throw unreadable }
                return nil
            }
            let fingerprint = try row.decode("fingerprint", as: String.self)
            let quiet = try row.decode("quiet", as: Date?.self)
            let ciphertext = try row.decode("ciphertext", as: Data.self)
            let secret: String
            do {
                secret = try cipher.open(ciphertext, clientAccountID: clientAccountID, fingerprint: fingerprint)
            } catch {
                // Free again, and as quiet as before: this process never sent with it.
                try await pool.execute(
                    """
                    UPDATE callwindow.tokens SET lease_owner = NULL, lease_expires_at = NULL, quiet_after = $4
                    WHERE client_account_id = $1 AND fingerprint = $2 AND lease_owner = $3
                    """,
                    clientAccountID, fingerprint, owner, quiet)
                unreadable = error
                excluded.append(fingerprint)
                continue
            }
            return StoredToken(
                secret: secret, fingerprint: fingerprint,
                mintedAt: Self.ms(try row.decode("minted_at", as: Date.self)),
                expiresAt: Self.ms(try row.decode("expires_at", as: Date.self)),
                leaseExpiresAt: Self.ms(try row.decode("lease_expires_at", as: Date.self)),
                quietSince: quiet.map(Self.ms)
            )
        }
    }

    /// Extends `owner`'s still-valid leases on `fingerprints` to `now + leaseMs`; returns the
    /// fingerprints renewed (a lease that already lapsed is lost: it is not renewed).
    public func renew(
        clientAccountID: UUID, fingerprints: [String], owner: String, now: Int64, leaseMs: Int64
    ) async throws -> [String] {
        guard !fingerprints.isEmpty else { return [] }
        let rows = try await pool.query(
            """
            UPDATE callwindow.tokens SET lease_expires_at = $4
            WHERE client_account_id = $1 AND fingerprint = ANY($2) AND lease_owner = $3
              AND lease_expires_at > $5 AND revoked_at IS NULL
            RETURNING fingerprint
            """,
            clientAccountID, fingerprints, owner, Self.date(now + leaseMs), Self.date(now)
        )
        return try rows.map { try $0.decode("fingerprint", as: String.self) }
    }

    /// Stored tokens valid at least until `validUntil` whose lease another process holds at
    /// `now`: (fingerprint, lease expiry). A restarted instance waits for these (their holder may
    /// be dead) before it spends a mint.
    public func leasedElsewhere(clientAccountID: UUID, owner: String, now: Int64, validUntil: Int64) async throws -> [(fingerprint: String, leaseExpiresAt: Int64)] {
        try await pool.query(
            """
            SELECT fingerprint, lease_expires_at FROM callwindow.tokens
            WHERE client_account_id = $1 AND revoked_at IS NULL AND expires_at > $4
              AND lease_expires_at > $3 AND lease_owner IS DISTINCT FROM $2
            ORDER BY lease_expires_at
            """, clientAccountID, owner, Self.date(now), Self.date(validUntil)
        ).map { (try $0.decode("fingerprint", as: String.self), Self.ms(try $0.decode("lease_expires_at", as: Date.self))) }
    }

    /// Gives up `owner`'s lease on `fingerprint` at `now` (another process may take it at once,
    /// and waits one rate window past `now` before sending with it).
    public func release(clientAccountID: UUID, fingerprint: String, owner: String, now: Int64) async throws {
        try await pool.execute(
            """
            UPDATE callwindow.tokens SET lease_owner = NULL, lease_expires_at = NULL, quiet_after = $4
            WHERE client_account_id = $1 AND fingerprint = $2 AND lease_owner = $3
            """,
            clientAccountID, fingerprint, owner, Self.date(now)
        )
    }

    /// Marks `fingerprint` revoked (the API answered 401): it is never leased again.
    public func revoke(clientAccountID: UUID, fingerprint: String, now: Int64) async throws {
        try await pool.execute(
            """
            UPDATE callwindow.tokens SET revoked_at = $3, lease_owner = NULL, lease_expires_at = NULL
            WHERE client_account_id = $1 AND fingerprint = $2
            """,
            clientAccountID, fingerprint, Self.date(now)
        )
    }

    /// Re-seals under the cipher's current key every stored token its previous key opens, in
    /// one statement (so one transaction). A token whose row changed meanwhile is left for the
    /// next run; tokens already under the current key are left as they are, so a second run
    /// changes nothing. Tokens neither key opens are counted and left alone: no process with
    /// these keys can use them, and they leave the table once expired.
    public func rekey() async throws -> RekeyReport {
        let rows = try await pool.query(
            "SELECT client_account_id, fingerprint, ciphertext FROM callwindow.tokens ORDER BY client_account_id, fingerprint")
        var report = RekeyReport()
        var accounts: [UUID] = [], fingerprints: [String] = [], was: [Data] = [], sealed: [Data] = []
        for row in rows {
            let account = try row.decode("client_account_id", as: UUID.self)
            let fingerprint = try row.decode("fingerprint", as: String.self)
            let ciphertext = try row.decode("ciphertext", as: Data.self)
            let opened: (secret: String, previousKey: Bool)
            do {
                opened = try cipher.openTellingKey(ciphertext, clientAccountID: account, fingerprint: fingerprint)
            } catch {
                report.undecryptable += 1
                continue
            }
            guard opened.previousKey else {
                report.alreadyCurrent += 1
                continue
            }
            accounts.append(account)
            fingerprints.append(fingerprint)
            was.append(ciphertext)
            sealed.append(try cipher.seal(opened.secret, clientAccountID: account, fingerprint: fingerprint))
        }
        guard !accounts.isEmpty else { return report }
        report.resealed = try await pool.execute(
            """
            UPDATE callwindow.tokens t SET ciphertext = u.sealed
            FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[]) AS u (client_account_id, fingerprint, was, sealed)
            WHERE t.client_account_id = u.client_account_id AND t.fingerprint = u.fingerprint AND t.ciphertext = u.was
            """,
            accounts, fingerprints, was, sealed)
        return report
    }

    /// Deletes the client account's tokens that expired before `now`; returns how many.
    @discardableResult
    public func deleteExpired(clientAccountID: UUID, now: Int64) async throws -> Int {
        try await pool.execute(
            "DELETE FROM callwindow.tokens WHERE client_account_id = $1 AND expires_at <= $2",
            clientAccountID, Self.date(now)
        )
    }

    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}

/// What `TokenStore.rekey()` did.
public struct RekeyReport: Sendable, Equatable {
    /// Tokens re-sealed under the current key.
    public var resealed = 0
    /// Tokens already sealed under the current key (left as they were).
    public var alreadyCurrent = 0
    /// Tokens neither key opens (left as they were).
    public var undecryptable = 0

    /// A report of the given counts.
    public init(resealed: Int = 0, alreadyCurrent: Int = 0, undecryptable: Int = 0) {
        self.resealed = resealed
        self.alreadyCurrent = alreadyCurrent
        self.undecryptable = undecryptable
    }
}
