-- CallWindow: the token ledger and the token store (issue 5, DESIGN.md invariant 3).
--
-- Minting is scarce (10 per rolling 30 minutes per client account, each token valid 60
-- minutes), so every mint attempt of every instance is written to `token_mints` under an
-- advisory lock keyed by the client account before the API is called, and tokens are kept
-- (encrypted) in `tokens` so that a restart or a second instance reuses them. A process uses a
-- token only while it holds an unexpired lease on it. Product SQL never calls now(): the
-- instant is always a parameter. Only fingerprints (first 12 hex of SHA-256) identify tokens.

CREATE TABLE callwindow.token_mints (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  client_account_id uuid        NOT NULL,
  minted_at         timestamptz NOT NULL,
  expires_at        timestamptz,
  fingerprint       text,
  instance          text        NOT NULL,
  -- pending: budget reserved, API call under way; minted; failed (still counts: the server
  -- may have counted it).
  outcome           text        NOT NULL DEFAULT 'pending',
  CONSTRAINT token_mints_outcome CHECK (outcome IN ('pending', 'minted', 'failed')),
  CONSTRAINT token_mints_fingerprint CHECK (fingerprint IS NULL OR fingerprint ~ '^[0-9a-f]{12}$')
);

CREATE INDEX token_mints_client_minted_at ON callwindow.token_mints (client_account_id, minted_at);

COMMENT ON TABLE callwindow.token_mints IS
  'Every token mint attempt of every instance; the rolling mint budget is counted here (failed attempts included).';

CREATE TABLE callwindow.tokens (
  client_account_id uuid        NOT NULL,
  fingerprint       text        NOT NULL,
  -- AES-GCM (nonce ‖ ciphertext ‖ tag) of the token, key from the environment; never plaintext.
  ciphertext        bytea       NOT NULL,
  minted_at         timestamptz NOT NULL,
  expires_at        timestamptz NOT NULL,
  lease_owner       text,
  lease_expires_at  timestamptz,
  -- Set when the API answered 401 for it: never leased again.
  revoked_at        timestamptz,
  PRIMARY KEY (client_account_id, fingerprint),
  CONSTRAINT tokens_fingerprint CHECK (fingerprint ~ '^[0-9a-f]{12}$'),
  CONSTRAINT tokens_lease CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

CREATE INDEX tokens_client_expires_at ON callwindow.tokens (client_account_id, expires_at);

COMMENT ON TABLE callwindow.tokens IS
  'Minted tokens, encrypted, leased to one process at a time (lease_owner until lease_expires_at).';
