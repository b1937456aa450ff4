-- CallWindow: the dashboard's operator actions and its audit indexes (issue 14).
--
-- With http.actions: true the dashboard shows pause, resume and cancel buttons. They call
-- callwindow.operator_set_status(campaign, status), which changes one campaign's status and
-- nothing else. It runs with the schema owner's rights (SECURITY DEFINER, a fixed search_path);
-- PUBLIC may not call it, and sql/roles.sql grants it to the callwindow_operator role only. The
-- app role still cannot write campaigns: a daemon's buttons work only where an administrator
-- granted callwindow_operator to its login role (GRANT callwindow_operator TO scheduler).
--
-- The campaign table's rules still hold: cancelling is final (campaigns_cancel_final), and the
-- change notifies the planner like any other. Returns the status the campaign had before.

CREATE FUNCTION callwindow.operator_set_status(p_campaign bigint, p_status text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_old text;
BEGIN
  IF p_status IS NULL OR p_status NOT IN ('active', 'paused', 'cancelled') THEN
    RAISE EXCEPTION 'status % is not one an operator may set: expected "active", "paused" or "cancelled"',
      coalesce(to_json(p_status)::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT c.status INTO v_old FROM callwindow.campaigns c WHERE c.id = p_campaign FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'campaign % does not exist', p_campaign USING ERRCODE = 'no_data_found';
  END IF;
  IF v_old IS DISTINCT FROM p_status THEN
    UPDATE callwindow.campaigns SET status = p_status WHERE id = p_campaign;
  END IF;
  RETURN v_old;
END $$;

REVOKE ALL ON FUNCTION callwindow.operator_set_status(bigint, text) FROM PUBLIC;

-- The dashboard's audit filters: /audit without a campaign reads a time range newest first (and
-- the overview counts the last 10 minutes), and a receiver's rows are looked up across months.
-- Without these, both scanned whole partitions (2.6 s for the last 24 hours of 10 million rows,
-- `callwindow bench dashboard`). An index on the partitioned table is created on every partition,
-- present and future. `callwindow bench pipeline` before and after: README, "Dashboard".
CREATE INDEX push_attempts_attempted_at_idx ON callwindow.push_attempts (attempted_at);
CREATE INDEX push_attempts_receiver_idx ON callwindow.push_attempts (receiver, attempted_at);
