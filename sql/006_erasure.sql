-- CallWindow: erasure. A person may ask to be forgotten, but the audit trail is append-only.
--
-- callwindow.erase_phone(client, phone, pseudonym) replaces one phone number of one client
-- account, everywhere it appears, with a pseudonym the caller computes as a keyed HMAC (so the
-- same person still matches across rows, and nobody without the key can tell who it was):
-- the audit trail (caller and receiver), the queue, and the campaign tables. Records of that
-- phone still waiting in the queue are cancelled first, with audit rows. It refuses while any
-- of them is in flight (an instance holds it and could still write it under the real number):
-- try again once that attempt has finished.
--
-- The do-not-contact list keeps the real number, so the person is never called again; delete
-- that row yourself if the person must be forgotten there too.
--
-- Only the schema owner and members of callwindow_admin may run it (sql/roles.sql); it runs with
-- the owner's rights, and the append-only audit allows UPDATE only inside it.

CREATE OR REPLACE FUNCTION callwindow.push_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND current_setting('callwindow.erasing', true) = 'on' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'callwindow.push_attempts is append-only: % is not allowed (drop whole months with "callwindow audit prune")', TG_OP
    USING ERRCODE = 'insufficient_privilege', SCHEMA = 'callwindow', TABLE = 'push_attempts';
END $$;

-- The campaign tables accept a pseudonym (not a phone number) only from the erasure.
CREATE FUNCTION callwindow.erasing_pseudonym(value text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT current_setting('callwindow.erasing', true) = 'on' AND value LIKE 'erased-%'
$$;

CREATE OR REPLACE FUNCTION callwindow.campaign_callers_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF callwindow.erasing_pseudonym(NEW.phone) THEN RETURN NEW; END IF;
  NEW.phone := callwindow.checked_phone(NEW.phone, 'caller phone', 'campaign_callers_phone_valid', 'campaign_callers', 'phone');
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION callwindow.campaign_receivers_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF callwindow.erasing_pseudonym(NEW.phone) THEN RETURN NEW; END IF;
  NEW.phone := callwindow.checked_phone(NEW.phone, 'receiver phone', 'campaign_receivers_phone_valid', 'campaign_receivers', 'phone');
  IF NEW.call_reason IS NOT NULL OR NEW.label_name IS NOT NULL THEN
    PERFORM callwindow.check_texts('receiver', 'campaign_receivers', NEW.label_name, NEW.call_reason);
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION callwindow.campaign_pairs_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT callwindow.erasing_pseudonym(NEW.caller) THEN
    NEW.caller := callwindow.checked_phone(NEW.caller, 'pair caller phone', 'campaign_pairs_caller_valid', 'campaign_pairs', 'caller');
  END IF;
  IF NOT callwindow.erasing_pseudonym(NEW.receiver) THEN
    NEW.receiver := callwindow.checked_phone(NEW.receiver, 'pair receiver phone', 'campaign_pairs_receiver_valid', 'campaign_pairs', 'receiver');
  END IF;
  IF NEW.call_reason IS NOT NULL OR NEW.label_name IS NOT NULL THEN
    PERFORM callwindow.check_texts('pair', 'campaign_pairs', NEW.label_name, NEW.call_reason);
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION callwindow.erase_phone(p_client uuid, p_phone text, p_pseudonym text, p_at timestamptz, p_instance text)
RETURNS TABLE (relation text, changed bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_phone text := callwindow.normalize_phone(p_phone);
  n bigint;
BEGIN
  IF p_pseudonym NOT LIKE 'erased-%' OR length(p_pseudonym) < 20 THEN
    RAISE EXCEPTION 'the pseudonym must start with "erased-" and carry a keyed hash' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT 1 FROM callwindow.deliveries d WHERE d.client_account_id = p_client AND d.state = 'in_flight'
             AND (d.receiver = v_phone OR d.caller = v_phone)) THEN
    RAISE EXCEPTION 'a record of this phone is being sent right now: try the erasure again in a minute'
      USING ERRCODE = 'lock_not_available';
  END IF;
  PERFORM set_config('callwindow.erasing', 'on', true);

  -- Records of the phone still waiting are cancelled, with audit rows (pseudonymised below).
  WITH cancelled AS (
    UPDATE callwindow.deliveries d SET state = 'cancelled', outcome = 'cancelled', reason = 'the person asked to be erased',
           finished_at = p_at, lease_owner = NULL, lease_expires_at = NULL
    WHERE d.client_account_id = p_client AND d.state = 'pending' AND (d.receiver = v_phone OR d.caller = v_phone)
    RETURNING d.*
  ), audit AS (
    INSERT INTO callwindow.push_attempts (attempted_at, client_account_id, campaign_id, window_id, delivery_id, caller, receiver,
      starts_at, ends_at, label_id, label_name, call_reason, transport, outcome, reason, instance)
    SELECT p_at, c.client_account_id, c.campaign_id, c.window_id, c.id, c.caller, c.receiver, c.starts_at, c.ends_at,
           c.label_id, c.label_name, c.call_reason, 'none', 'cancelled', 'the person asked to be erased', p_instance
    FROM cancelled c
  ), counted AS (
    UPDATE callwindow.windows w SET cancelled = w.cancelled + f.n
    FROM (SELECT window_id, count(*) AS n FROM cancelled GROUP BY window_id) f
    WHERE w.id = f.window_id
  )
  SELECT count(*) INTO n FROM cancelled;
  relation := 'deliveries cancelled'; changed := n; RETURN NEXT;

  UPDATE callwindow.push_attempts SET caller = CASE WHEN caller = v_phone THEN p_pseudonym ELSE caller END,
                                      receiver = CASE WHEN receiver = v_phone THEN p_pseudonym ELSE receiver END
  WHERE client_account_id = p_client AND (caller = v_phone OR receiver = v_phone);
  GET DIAGNOSTICS n = ROW_COUNT;
  relation := 'push_attempts'; changed := n; RETURN NEXT;

  UPDATE callwindow.deliveries SET caller = CASE WHEN caller = v_phone THEN p_pseudonym ELSE caller END,
                                   receiver = CASE WHEN receiver = v_phone THEN p_pseudonym ELSE receiver END
  WHERE client_account_id = p_client AND (caller = v_phone OR receiver = v_phone);
  GET DIAGNOSTICS n = ROW_COUNT;
  relation := 'deliveries'; changed := n; RETURN NEXT;

  UPDATE callwindow.campaign_receivers r SET phone = p_pseudonym
  FROM callwindow.campaigns c WHERE c.id = r.campaign_id AND c.client_account_id = p_client AND r.phone = v_phone;
  GET DIAGNOSTICS n = ROW_COUNT;
  relation := 'campaign_receivers'; changed := n; RETURN NEXT;

  UPDATE callwindow.campaign_callers cc SET phone = p_pseudonym
  FROM callwindow.campaigns c WHERE c.id = cc.campaign_id AND c.client_account_id = p_client AND cc.phone = v_phone;
  GET DIAGNOSTICS n = ROW_COUNT;
  relation := 'campaign_callers'; changed := n; RETURN NEXT;

  UPDATE callwindow.campaign_pairs p SET caller = CASE WHEN p.caller = v_phone THEN p_pseudonym ELSE p.caller END,
                                         receiver = CASE WHEN p.receiver = v_phone THEN p_pseudonym ELSE p.receiver END
  FROM callwindow.campaigns c WHERE c.id = p.campaign_id AND c.client_account_id = p_client AND (p.caller = v_phone OR p.receiver = v_phone);
  GET DIAGNOSTICS n = ROW_COUNT;
  relation := 'campaign_pairs'; changed := n; RETURN NEXT;

  PERFORM set_config('callwindow.erasing', 'off', true);
END $$;

REVOKE ALL ON FUNCTION callwindow.erase_phone(uuid, text, text, timestamptz, text) FROM PUBLIC;
ALTER FUNCTION callwindow.erase_phone(uuid, text, text, timestamptz, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
