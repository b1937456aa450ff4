-- CallWindow: windows that end without being pushed leave a trail.
--
-- A window's records are counted when its deliveries are created. A window that is never
-- materialised — its campaign paused or held by a label problem until it ended, the planner
-- away, or its campaign cancelled before its push — used to vanish from the counts. Now the
-- planner stores how many records each planned window holds (`planned_records`), and when such
-- a window expires or is cancelled those records are counted as expired or cancelled, with one
-- row in the append-only `window_outcomes` (`push_attempts` is per record and needs a caller
-- and a receiver). So at every moment, in `window_progress` and `campaign_progress`:
--
--   records = pending + in_flight + accepted + rejected + expired + cancelled + suppressed

ALTER TABLE callwindow.windows ADD COLUMN planned_records integer NOT NULL DEFAULT 0;

CREATE TABLE callwindow.window_outcomes (
  at timestamptz NOT NULL,
  client_account_id uuid NOT NULL,
  campaign_id bigint NOT NULL,
  window_id bigint NOT NULL,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  outcome text NOT NULL,
  records integer NOT NULL,
  reason text NOT NULL,
  instance text NOT NULL,
  CONSTRAINT window_outcomes_outcome_valid CHECK (outcome IN ('expired', 'cancelled'))
);

CREATE INDEX window_outcomes_campaign_idx ON callwindow.window_outcomes (campaign_id, at);

CREATE FUNCTION callwindow.window_outcomes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'callwindow.window_outcomes is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege', SCHEMA = 'callwindow', TABLE = 'window_outcomes';
END $$;

CREATE TRIGGER window_outcomes_no_update BEFORE UPDATE OR DELETE ON callwindow.window_outcomes
  FOR EACH ROW EXECUTE FUNCTION callwindow.window_outcomes_append_only();
CREATE TRIGGER window_outcomes_no_truncate BEFORE TRUNCATE ON callwindow.window_outcomes
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.window_outcomes_append_only();
