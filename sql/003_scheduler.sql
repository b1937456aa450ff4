-- CallWindow: the scheduler's tables — windows, the delivery queue, the audit trail — and the
-- views people read. The scheduler writes these; users read them (and never need to write).
-- Every table carries client_account_id and every hot query is scoped to one account.

-- Epoch milliseconds (the API's unit, and what the scheduler passes as `now`) to timestamptz and
-- back, exactly (no floating point).
CREATE FUNCTION callwindow.at_ms(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT timestamptz 'epoch' + ms * interval '1 millisecond' $$;

CREATE FUNCTION callwindow.ms_of(at timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT floor(extract(epoch FROM at) * 1000)::bigint $$;

-- One row per window of a campaign, as the planner last planned it. A window is
-- 'planned' until its deliveries are created ('materialized'); 'cancelled' when the campaign
-- was cancelled or re-planned without it; 'expired' when it ended before it could be pushed.
CREATE TABLE callwindow.windows (
  id bigint GENERATED ALWAYS AS IDENTITY,
  client_account_id uuid NOT NULL,
  campaign_id bigint NOT NULL,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  deadline timestamptz NOT NULL,
  push_at timestamptz NOT NULL,
  late_by_ms bigint NOT NULL DEFAULT 0,
  state text NOT NULL DEFAULT 'planned',
  records integer NOT NULL DEFAULT 0,
  accepted integer NOT NULL DEFAULT 0,
  rejected integer NOT NULL DEFAULT 0,
  expired integer NOT NULL DEFAULT 0,
  cancelled integer NOT NULL DEFAULT 0,
  planned_at timestamptz NOT NULL,
  materialized_at timestamptz,
  CONSTRAINT windows_pkey PRIMARY KEY (id),
  CONSTRAINT windows_campaign_exists FOREIGN KEY (campaign_id) REFERENCES callwindow.campaigns (id) ON DELETE CASCADE,
  CONSTRAINT windows_unique_span UNIQUE (campaign_id, starts_at, ends_at),
  CONSTRAINT windows_state_valid CHECK (state IN ('planned', 'materialized', 'cancelled', 'expired')),
  CONSTRAINT windows_span_valid CHECK (ends_at > starts_at AND ends_at - starts_at <= interval '24 hours')
);

CREATE INDEX windows_due_idx ON callwindow.windows (client_account_id, push_at) WHERE state = 'planned';

-- The queue: one row per window × caller × receiver, with its resolved texts, created just in
-- time. 'pending' rows wait for push_at (and next_attempt_at after a retry); a claim makes them
-- 'in_flight' under a lease (owner, expiry, fencing token); results make them final.
CREATE TABLE callwindow.deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY,
  client_account_id uuid NOT NULL,
  campaign_id bigint NOT NULL,
  window_id bigint NOT NULL,
  caller text NOT NULL,
  receiver text NOT NULL,
  label_id uuid NOT NULL,
  label_name text,
  call_reason text,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  deadline timestamptz NOT NULL,
  push_at timestamptz NOT NULL,
  priority smallint NOT NULL DEFAULT 0,
  state text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  lease_owner text,
  lease_expires_at timestamptz,
  lease_token bigint NOT NULL DEFAULT 0,
  outcome text,
  reason text,
  finished_at timestamptz,
  CONSTRAINT deliveries_pkey PRIMARY KEY (id),
  CONSTRAINT deliveries_window_exists FOREIGN KEY (window_id) REFERENCES callwindow.windows (id) ON DELETE CASCADE,
  CONSTRAINT deliveries_unique_record UNIQUE (window_id, caller, receiver),
  CONSTRAINT deliveries_state_valid CHECK (state IN ('pending', 'in_flight', 'accepted', 'rejected', 'expired', 'cancelled'))
);

-- Claims: due pending rows of one account, earliest deadline first.
CREATE INDEX deliveries_claim_idx ON callwindow.deliveries (client_account_id, deadline, priority DESC, id)
  WHERE state = 'pending';
-- Rescue: in-flight rows whose lease expired.
CREATE INDEX deliveries_lease_idx ON callwindow.deliveries (lease_expires_at) WHERE state = 'in_flight';
CREATE INDEX deliveries_campaign_idx ON callwindow.deliveries (campaign_id, state);

-- The audit trail: one row per attempt (and per record that ended without one: expired,
-- cancelled, rejected by validation). Append-only; partitioned by month; old months are
-- dropped whole by `callwindow audit prune`.
CREATE TABLE callwindow.push_attempts (
  attempted_at timestamptz NOT NULL,
  client_account_id uuid NOT NULL,
  campaign_id bigint NOT NULL,
  window_id bigint,
  delivery_id bigint,
  caller text NOT NULL,
  receiver text NOT NULL,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  label_id uuid NOT NULL,
  label_name text,
  call_reason text,
  transport text NOT NULL,
  token_fingerprint text,
  http_status integer,
  outcome text NOT NULL,
  reason text,
  latency_ms integer,
  instance text NOT NULL
) PARTITION BY RANGE (attempted_at);

CREATE INDEX push_attempts_campaign_idx ON callwindow.push_attempts (campaign_id, attempted_at);

CREATE FUNCTION callwindow.push_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'callwindow.push_attempts is append-only: % is not allowed (drop whole months with "callwindow audit prune")', TG_OP
    USING ERRCODE = 'insufficient_privilege', SCHEMA = 'callwindow', TABLE = 'push_attempts';
END $$;

CREATE TRIGGER push_attempts_no_update BEFORE UPDATE OR DELETE ON callwindow.push_attempts
  FOR EACH ROW EXECUTE FUNCTION callwindow.push_attempts_append_only();
CREATE TRIGGER push_attempts_no_truncate BEFORE TRUNCATE ON callwindow.push_attempts
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.push_attempts_append_only();

-- Creates the monthly partitions covering [month of at, + months_ahead months]. Idempotent.
CREATE FUNCTION callwindow.ensure_push_attempt_partitions(at timestamptz, months_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  month_start timestamptz;
  name text;
  created integer := 0;
BEGIN
  -- Serialize concurrent callers (several planners, several instances) for this transaction.
  PERFORM pg_advisory_xact_lock(7164263012856143943);
  FOR i IN 0..months_ahead LOOP
    month_start := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => i);
    name := format('push_attempts_%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM'));
    IF to_regclass('callwindow.' || name) IS NULL THEN
      EXECUTE format('CREATE TABLE callwindow.%I PARTITION OF callwindow.push_attempts FOR VALUES FROM (%L) TO (%L)',
                     name, month_start, month_start + interval '1 month');
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

-- What the planner found about each campaign (never written into campaigns.status): its
-- problems, one sentence each, re-evaluated whenever the campaign, its sets or its label change.
CREATE TABLE callwindow.campaign_state (
  campaign_id bigint NOT NULL,
  client_account_id uuid NOT NULL,
  problems text[] NOT NULL DEFAULT '{}',
  invalid_records bigint NOT NULL DEFAULT 0,
  planned_at timestamptz NOT NULL,
  CONSTRAINT campaign_state_pkey PRIMARY KEY (campaign_id),
  CONSTRAINT campaign_state_campaign_exists FOREIGN KEY (campaign_id) REFERENCES callwindow.campaigns (id) ON DELETE CASCADE
);

-- Drops the monthly partitions that end at or before `before` (retention); returns their names.
CREATE FUNCTION callwindow.drop_push_attempt_partitions(before timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  child record;
  month_start timestamptz;
BEGIN
  FOR child IN
    SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = 'callwindow' AND p.relname = 'push_attempts' AND c.relname ~ '^push_attempts_[0-9]{4}_[0-9]{2}$'
    ORDER BY c.relname
  LOOP
    month_start := (to_char(to_timestamp(substring(child.relname from 15), 'YYYY_MM'), 'YYYY-MM-01') || ' 00:00:00+00')::timestamptz;
    IF month_start + interval '1 month' <= before THEN
      EXECUTE format('DROP TABLE callwindow.%I', child.relname);
      RETURN NEXT child.relname;
    END IF;
  END LOOP;
END $$;

-- Campaign, set and label changes wake the planner: one NOTIFY per statement, not per row.
CREATE FUNCTION callwindow.notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('callwindow_changes', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE TRIGGER campaigns_notify AFTER INSERT OR UPDATE OR DELETE ON callwindow.campaigns
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_changes();
CREATE TRIGGER campaign_callers_notify AFTER INSERT OR UPDATE OR DELETE ON callwindow.campaign_callers
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_changes();
CREATE TRIGGER campaign_receivers_notify AFTER INSERT OR UPDATE OR DELETE ON callwindow.campaign_receivers
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_changes();
CREATE TRIGGER campaign_pairs_notify AFTER INSERT OR UPDATE OR DELETE ON callwindow.campaign_pairs
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_changes();
CREATE TRIGGER labels_notify AFTER INSERT OR UPDATE OR DELETE ON callwindow.labels
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_changes();

-- Progress of each window: final counts kept on the window (deliveries leave the queue once
-- their window ended), live counts from the queue.
CREATE VIEW callwindow.window_progress AS
SELECT w.campaign_id, w.id AS window_id, w.client_account_id, w.starts_at, w.ends_at, w.deadline, w.push_at,
       w.state, w.records,
       coalesce(q.pending, 0) AS pending,
       coalesce(q.in_flight, 0) AS in_flight,
       w.accepted, w.rejected, w.expired, w.cancelled, w.late_by_ms
FROM callwindow.windows w
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE d.state = 'pending') AS pending,
         count(*) FILTER (WHERE d.state = 'in_flight') AS in_flight
  FROM callwindow.deliveries d WHERE d.window_id = w.id AND d.state IN ('pending', 'in_flight')
) q ON true;

CREATE VIEW callwindow.campaign_progress AS
SELECT c.id AS campaign_id, c.client_account_id, c.name, c.status,
       count(w.window_id) AS windows,
       coalesce(sum(w.records), 0)::bigint AS records,
       coalesce(sum(w.pending), 0)::bigint AS pending,
       coalesce(sum(w.in_flight), 0)::bigint AS in_flight,
       coalesce(sum(w.accepted), 0)::bigint AS accepted,
       coalesce(sum(w.rejected), 0)::bigint AS rejected,
       coalesce(sum(w.expired), 0)::bigint AS expired,
       coalesce(sum(w.cancelled), 0)::bigint AS cancelled,
       min(w.push_at) FILTER (WHERE w.state = 'planned') AS next_push_at,
       coalesce(max(w.late_by_ms), 0) AS max_late_by_ms,
       coalesce(s.problems, '{}') AS problems,
       coalesce(s.invalid_records, 0) AS invalid_records,
       s.planned_at
FROM callwindow.campaigns c
LEFT JOIN callwindow.window_progress w ON w.campaign_id = c.id
LEFT JOIN callwindow.campaign_state s ON s.campaign_id = c.id
GROUP BY c.id, s.problems, s.invalid_records, s.planned_at;
