// The token pool's ledger and mint I/O: leasing a stored token, watching leases held elsewhere,
// minting within the shared budget, and releasing or revoking dropped tokens. Every decision
// (whether to watch a lease, when to retry, whether a closed pool may take a token) is the state
// machine's; this file only performs the steps it asks for, in order.

public import CallRecordAPI
import Foundation
import Ledger
import Logging
import Metrics
import Planning
import Synchronization

extension TokenPool {
    /// Brings the pool to `count` tokens (at most `maxTokens`) before the first send, leasing
    /// stored tokens first and minting within the budget; returns the number held. For the
    /// bench and for warm starts; `send` grows the pool on demand by itself.
    @discardableResult
    public func prepare(tokens count: Int) async -> Int {
        await prepare(tokens: count, capped: true)
    }

    private func prepare(tokens count: Int, capped: Bool) async -> Int {
        let target = min(count, options.maxTokens)
        var failures = 0
        while state.withLock({ $0.machine.tokens.count }) < target, failures < 3 {
            let now = clock.now()
            guard state.withLock({ $0.machine.startAcquisition(now: now) }) else { break }
            if await !acquire(refreshOf: nil, warmingTo: target, capped: capped) { failures += 1 }
        }
        return state.withLock { $0.machine.tokens.count }
    }

    /// Runs `body` with one of the pool's tokens, leasing or minting one (within the shared
    /// budget) if the pool holds none — for occasional calls such as listing labels, which must
    /// work while a daemon holds the account's `tokens.max`: this mint is not capped by them,
    /// only by the budget. The token stays in the pool; its secret never leaves `body`.
    public func withToken<T: Sendable>(_ body: (BearerToken) async throws -> T) async throws -> T {
        if state.withLock({ $0.secrets.isEmpty }) { await prepare(tokens: 1, capped: false) }
        guard let token = state.withLock({ $0.secrets.values.first }) else {
            throw TokenPoolError(.noToken, "no token could be leased or minted for client account \(base.clientAccountID) (mint budget used up, or the API refused the key)")
        }
        return try await body(token)
    }

    /// Stops using `fingerprint` and releases its lease (or, `revoked`, marks it revoked in the ledger).
    func drop(_ fingerprint: String, reason: String, revoked: Bool) async {
        logger.info("token dropped", metadata: ["token": "\(fingerprint)", "reason": "\(reason)"])
        state.withLock { state in
            state.machine.tokenRemoved(fingerprint: fingerprint)
            state.secrets[fingerprint] = nil
        }
        do {
            if revoked {
                try await store.revoke(clientAccountID: base.clientAccountID, fingerprint: fingerprint, now: clock.now())
            } else {
                try await release(fingerprint)
            }
        } catch {
            logger.warning("could not update the dropped token in the store", metadata: ["token": "\(fingerprint)", "error": "\(error)"])
        }
    }

    func release(_ fingerprint: String) async throws {
        try await store.release(clientAccountID: base.clientAccountID, fingerprint: fingerprint, owner: base.instance,
                                now: clock.now())
    }

    /// Leases a stored token, else mints one within the shared budget (a growth mint only as
    /// `mayMint` allows, with `warmingTo` tokens wanted at least). The state machine's
    /// `acquiring` flag is set by the caller (tick or `startAcquisition`); every path out clears it.
    /// Returns whether the pool gained a token.
    @discardableResult
    func acquire(refreshOf old: String?, warmingTo: Int = 0, capped: Bool = true) async -> Bool {
        let id = base.clientAccountID
        let owner = base.instance
        let now = clock.now()
        let validUntil = now + options.refreshBeforeMs + options.requestTimeoutMs
        do {
            let held = state.withLock { Array($0.machine.tokens.keys) }
            if let stored = try await store.lease(
                clientAccountID: id, owner: owner, now: now, leaseMs: options.leaseMs, validUntil: validUntil, excluding: held
            ) {
                guard await add(BearerToken(stored.secret), expiresAt: stored.expiresAt, leaseExpiresAt: stored.leaseExpiresAt,
                                quietSince: stored.quietSince, now: now) else {
                    return false
                }
                logger.info("token leased from the store", metadata: ["token": "\(stored.fingerprint)"])
                return true
            }
            // A stored token leased elsewhere may belong to a process that died: the machine
            // decides whether to watch its lease (it may lapse) or mint now. An occasional call
            // (uncapped) does not wait: the tokens leased elsewhere are busy serving the account.
            if old == nil, capped {
                let elsewhere = try await store.leasedElsewhere(clientAccountID: id, owner: owner, now: now, validUntil: validUntil)
                let wait = state.withLock { state -> Int64? in
                    guard let wait = state.machine.leasedElsewhere(elsewhere, now: now, observationMs: options.leaseMs / 3 + 1_500) else {
                        return nil
                    }
                    state.machine.acquireFailed(retryAt: wait + 1, refreshOf: old)
                    return wait
                }
                if let wait {
                    logger.info("watching a stored token's lease before minting", metadata: ["until": "\(wait)"])
                    return false
                }
                guard !capped || state.withLock({ $0.machine.mayMint(elsewhere: elsewhere.count, now: now, atLeast: warmingTo) }) else {
                    logger.debug("no mint: the account's tokens cover its demand, or it holds tokens.max", metadata: ["elsewhere": "\(elsewhere.count)"])
                    return false
                }
            }
            return try await mint(refreshOf: old, now: now, capped: capped)
        } catch {
            let retryAt = state.withLock { $0.machine.acquireErrored(now: clock.now(), refreshOf: old) }
            logger.warning("token acquisition failed", metadata: ["error": "\(error)", "retry_at": "\(retryAt)"])
            return false
        }
    }

    /// Reserves a mint in the shared ledger (the budget decides from the account's recent mints),
    /// mints, and stores the token sealed, leased to this process.
    private func mint(refreshOf old: String?, now decideAt: Int64, capped: Bool) async throws -> Bool {
        let id = base.clientAccountID
        let budget = self.budget
        // A growth mint is capped at tokens.max live tokens for the account, counting only tokens
        // that could still be leased (one due for refresh is on its way out); a refresh replaces one.
        let reservation = try await store.reserveMint(
            clientAccountID: id, instance: base.instance, now: decideAt, windowMs: options.mintWindowMs,
            cap: old == nil && capped
                ? TokenCap(max: options.maxTokens, validUntil: decideAt + options.refreshBeforeMs + options.requestTimeoutMs) : nil
        ) { recent in
            if case .refused(let nextAt) = budget.decide(recentMints: recent, now: decideAt) { return nextAt }
            return nil
        }
        let ledgerID: Int64
        switch reservation {
        case .reserved(id: let reserved):
            ledgerID = reserved
        case .refused(nextAt: let nextAt):
            logger.notice("mint budget used up", metadata: ["next_mint_at": "\(nextAt)"])
            state.withLock { $0.machine.mintRefused(nextMintAt: nextAt, now: decideAt, refreshOf: old) }
            return false
        case .atCapacity(live: let live):
            logger.debug("no mint: the account already has tokens.max tokens", metadata: ["live": "\(live)"])
            state.withLock { $0.machine.mintRefused(nextMintAt: .max, now: decideAt, refreshOf: old) }
            return false
        }
        let minted: MintedToken
        do {
            minted = try await api.mintToken(clientAccountID: id, key: key)
        } catch {
            try? await store.finishMint(id: ledgerID, fingerprint: nil, expiresAt: nil, answeredAt: clock.now())
            throw error
        }
        // The token's life is counted from before the request: never later than the server's.
        let expiresAt = decideAt + options.tokenLifetimeMs
        // Stored before the mint is recorded as done: until then the pending mint counts against
        // tokens.max, from then on the stored token (recorded first, the token counted nowhere in
        // between, and another instance's capped mint in that instant was allowed).
        let now = clock.now()
        try await store.insert(
            clientAccountID: id, secret: minted.token.secret, fingerprint: minted.token.fingerprint,
            mintedAt: now, expiresAt: expiresAt, owner: base.instance, leaseExpiresAt: now + options.leaseMs
        )
        // The budget counts it until a window after the answer (the API counted it in between).
        try await store.finishMint(id: ledgerID, fingerprint: minted.token.fingerprint, expiresAt: expiresAt, answeredAt: clock.now())
        Counter(label: "callwindow_token_mints_total", dimensions: [("client", id.uuidString.lowercased())]).increment()
        guard await add(minted.token, expiresAt: expiresAt, leaseExpiresAt: now + options.leaseMs, now: now) else { return false }
        logger.info("token minted", metadata: ["token": "\(minted.token.fingerprint)", "refresh_of": "\(old ?? "-")"])
        return true
    }

    /// Hands a leased or minted token to the machine; a pool closed meanwhile refuses it, and its
    /// lease is released at once. Returns whether the pool took it.
    private func add(_ token: BearerToken, expiresAt: Int64, leaseExpiresAt: Int64, quietSince: Int64? = nil, now: Int64) async -> Bool {
        let taken = state.withLock { state in
            guard state.machine.tokenAdded(fingerprint: token.fingerprint, expiresAt: expiresAt, leaseExpiresAt: leaseExpiresAt,
                                           quietSince: quietSince, now: now) else {
                return false
            }
            state.secrets[token.fingerprint] = token
            return true
        }
        if !taken {
            do { try await release(token.fingerprint) } catch {
                logger.warning("could not release the lease", metadata: ["token": "\(token.fingerprint)", "error": "\(error)"])
            }
        }
        return taken
    }
}
