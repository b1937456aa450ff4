-- CallWindow: what the SQL says is what gets pushed.
--
-- 1. Cancelling a campaign is final. Its windows are cancelled with their pending records, so
--    setting it back to active would plan nothing and push nothing, silently. The database
--    refuses that UPDATE with a message naming the rule: insert a new campaign instead, or use
--    status 'paused', which is the stop that can be resumed.
-- 2. An account-wide do-not-contact list, written with plain SQL like the campaigns. Every
--    campaign of the account honours it: its phones are never claimed, a record already in the
--    queue ends 'suppressed' (with an audit row), and each attempt is checked against it no more
--    than a second before it starts.
-- 3. 'suppressed' is a final delivery state, counted on the window and in the progress views.

CREATE FUNCTION callwindow.campaigns_cancel_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'cancelled' AND NEW.status IS DISTINCT FROM 'cancelled' THEN
    PERFORM callwindow.reject('campaigns_cancel_final', 'campaigns', 'status',
      format('campaign %s is cancelled, and cancelling is final: status cannot become %s again; '
             'insert a new campaign, or pause (status ''paused'') a campaign you may want to resume', OLD.id, to_json(NEW.status)));
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER campaigns_cancel_final BEFORE UPDATE OF status ON callwindow.campaigns
  FOR EACH ROW EXECUTE FUNCTION callwindow.campaigns_cancel_final();

-- People who must not be called for this account, whatever the campaign. A phone is stored
-- normalised, like the campaigns' receivers (so '+49 151 …' and '49151…' are the same person).
CREATE TABLE callwindow.do_not_contact (
  client_account_id uuid NOT NULL,
  phone text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now(),
  reason text,
  CONSTRAINT do_not_contact_pkey PRIMARY KEY (client_account_id, phone)
);

CREATE FUNCTION callwindow.do_not_contact_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.client_account_id IS NULL THEN
    PERFORM callwindow.reject('do_not_contact_client_required', 'do_not_contact', 'client_account_id', 'client_account_id is required');
  END IF;
  NEW.phone := callwindow.checked_phone(NEW.phone, 'do-not-contact phone', 'do_not_contact_phone_valid', 'do_not_contact', 'phone');
  RETURN NEW;
END $$;

CREATE TRIGGER do_not_contact_validate BEFORE INSERT OR UPDATE ON callwindow.do_not_contact
  FOR EACH ROW EXECUTE FUNCTION callwindow.do_not_contact_validate();
CREATE TRIGGER do_not_contact_notify AFTER INSERT OR UPDATE OR DELETE ON callwindow.do_not_contact
  FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_changes();

ALTER TABLE callwindow.deliveries DROP CONSTRAINT deliveries_state_valid;
ALTER TABLE callwindow.deliveries ADD CONSTRAINT deliveries_state_valid
  CHECK (state IN ('pending', 'in_flight', 'accepted', 'rejected', 'expired', 'cancelled', 'suppressed'));

ALTER TABLE callwindow.windows ADD COLUMN suppressed integer NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW callwindow.window_progress AS
SELECT w.campaign_id, w.id AS window_id, w.client_account_id, w.starts_at, w.ends_at, w.deadline, w.push_at,
       w.state, w.records,
       coalesce(q.pending, 0) AS pending,
       coalesce(q.in_flight, 0) AS in_flight,
       w.accepted, w.rejected, w.expired, w.cancelled, w.late_by_ms,
       w.suppressed
FROM callwindow.windows w
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE d.state = 'pending') AS pending,
         count(*) FILTER (WHERE d.state = 'in_flight') AS in_flight
  FROM callwindow.deliveries d WHERE d.window_id = w.id AND d.state IN ('pending', 'in_flight')
) q ON true;

CREATE OR REPLACE VIEW callwindow.campaign_progress AS
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
       s.planned_at,
       coalesce(sum(w.suppressed), 0)::bigint AS suppressed
FROM callwindow.campaigns c
LEFT JOIN callwindow.window_progress w ON w.campaign_id = c.id
LEFT JOIN callwindow.campaign_state s ON s.campaign_id = c.id
GROUP BY c.id, s.problems, s.invalid_records, s.planned_at;
