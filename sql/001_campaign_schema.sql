-- CallWindow: the user-facing campaign schema.
--
-- Campaigns are inserted with plain SQL by the business's own systems, so every table and
-- column here is a public interface: columns may be added, never renamed. Every rule is
-- enforced by the database itself, on INSERT and on UPDATE, with a one-sentence message that
-- names the column, the rule and (where it helps) the offending value, a named constraint and
-- SQLSTATE 23514 (check_violation).

CREATE SCHEMA IF NOT EXISTS callwindow;

-- Raises a check_violation with a named constraint and column.
CREATE FUNCTION callwindow.reject(constraint_name text, table_name text, column_name text, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING
    MESSAGE = message, ERRCODE = 'check_violation', SCHEMA = 'callwindow',
    TABLE = table_name, COLUMN = column_name, CONSTRAINT = constraint_name;
END $$;

-- Phone numbers: "+", spaces, "-", "." and parentheses are removed; what remains must be
-- 8 to 15 digits with the country code, not starting with 0 (the API wants digits only).
CREATE FUNCTION callwindow.normalize_phone(raw text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regexp_replace(raw, '[+ ().-]', '', 'g')
$$;

CREATE FUNCTION callwindow.is_phone(phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT phone ~ '^[1-9][0-9]{7,14}$'
$$;

CREATE FUNCTION callwindow.checked_phone(raw text, what text, constraint_name text, table_name text, column_name text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  phone text := callwindow.normalize_phone(raw);
BEGIN
  IF raw IS NULL THEN
    PERFORM callwindow.reject(constraint_name, table_name, column_name, format('%s is required', what));
  END IF;
  IF NOT callwindow.is_phone(phone) THEN
    PERFORM callwindow.reject(constraint_name, table_name, column_name,
      format('%s %s is not a phone number: expected 8 to 15 digits with country code', what, to_json(raw)));
  END IF;
  RETURN phone;
END $$;

-- The API's rules for a call reason (shared/API.md): 10 to 100 characters (Unicode scalar
-- values: char_length), none of ! @ # $ % ^ & * ( ) _ + /, no leading or trailing ".", ","
-- or "-", no leading or trailing spaces. Returns NULL when valid, else the broken rule.
CREATE FUNCTION callwindow.call_reason_problem(reason text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN reason IS NULL THEN NULL
    WHEN char_length(reason) < 10 OR char_length(reason) > 100 THEN
      format('has %s characters: it must have 10 to 100', char_length(reason))
    WHEN reason ~ '[!@#$%^&*()_+/]' THEN
      format('contains %s, which the API does not support (! @ # $ %% ^ & * ( ) _ + / are not allowed)',
             to_json(substring(reason from '[!@#$%^&*()_+/]')))
    WHEN reason ~ '^\s' OR reason ~ '\s$' THEN 'may not start or end with a space'
    WHEN reason ~ '^[.,-]' OR reason ~ '[.,-]$' THEN 'may not start or end with ".", "," or "-"'
  END
$$;

-- A label name (the caller ID shown) has 1 to 40 characters. Returns NULL when valid.
CREATE FUNCTION callwindow.label_name_problem(label_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN label_name IS NULL THEN NULL
    WHEN char_length(label_name) < 1 OR char_length(label_name) > 40 THEN
      format('has %s characters: it must have 1 to 40', char_length(label_name))
    WHEN label_name ~ '^\s' OR label_name ~ '\s$' THEN 'may not start or end with a space'
  END
$$;

CREATE FUNCTION callwindow.check_texts(what text, table_name text, label_name text, call_reason text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  problem text;
BEGIN
  problem := callwindow.label_name_problem(label_name);
  IF problem IS NOT NULL THEN
    PERFORM callwindow.reject(table_name || '_label_name_valid', table_name, 'label_name',
      format('%s label_name %s %s', what, to_json(label_name), problem));
  END IF;
  problem := callwindow.call_reason_problem(call_reason);
  IF problem IS NOT NULL THEN
    PERFORM callwindow.reject(table_name || '_call_reason_valid', table_name, 'call_reason',
      format('%s call_reason %s %s', what, to_json(call_reason), problem));
  END IF;
END $$;

-- Labels: copied from the API by `callwindow labels sync` (or inserted by hand).
CREATE TABLE callwindow.labels (
  client_account_id uuid NOT NULL,
  id uuid NOT NULL,
  name text NOT NULL,
  label_type text NOT NULL,
  synced_at timestamptz,
  CONSTRAINT labels_pkey PRIMARY KEY (client_account_id, id)
);

CREATE FUNCTION callwindow.labels_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.client_account_id IS NULL THEN
    PERFORM callwindow.reject('labels_client_account_id_required', 'labels', 'client_account_id', 'label client_account_id is required');
  END IF;
  IF NEW.id IS NULL THEN
    PERFORM callwindow.reject('labels_id_required', 'labels', 'id', 'label id is required (the uuid the API gives the label)');
  END IF;
  IF NEW.name IS NULL OR btrim(NEW.name) = '' THEN
    PERFORM callwindow.reject('labels_name_required', 'labels', 'name', 'label name is required and may not be blank');
  END IF;
  IF NEW.label_type IS NULL OR NEW.label_type NOT IN ('dynamic', 'static') THEN
    PERFORM callwindow.reject('labels_label_type_valid', 'labels', 'label_type',
      format('label label_type %s is not valid: expected "dynamic" or "static"', coalesce(to_json(NEW.label_type)::text, 'NULL')));
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER labels_validate BEFORE INSERT OR UPDATE ON callwindow.labels
  FOR EACH ROW EXECUTE FUNCTION callwindow.labels_validate();

-- Campaigns: one row per campaign; the period is [starts_at, ends_at).
CREATE TABLE callwindow.campaigns (
  id bigint GENERATED ALWAYS AS IDENTITY,
  client_account_id uuid NOT NULL,
  name text NOT NULL,
  label_id uuid NOT NULL,
  label_name text,
  call_reason text,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  time_zone text NOT NULL DEFAULT 'UTC',
  daily_start time,
  daily_end time,
  weekdays smallint[],
  lead interval NOT NULL DEFAULT '5 minutes',
  priority smallint NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'active',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT campaigns_pkey PRIMARY KEY (id),
  CONSTRAINT campaigns_period_valid CHECK (ends_at > starts_at),
  CONSTRAINT campaigns_status_valid CHECK (status IN ('active', 'paused', 'cancelled')),
  CONSTRAINT campaigns_daily_hours_valid CHECK ((daily_start IS NULL) = (daily_end IS NULL) AND daily_start IS DISTINCT FROM daily_end OR daily_start IS NULL),
  CONSTRAINT campaigns_lead_valid CHECK (lead >= interval '0')
);

CREATE INDEX campaigns_client_account_idx ON callwindow.campaigns (client_account_id, status);

CREATE FUNCTION callwindow.campaigns_validate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  known_label record;
  day smallint;
BEGIN
  IF NEW.name IS NULL OR btrim(NEW.name) = '' THEN
    PERFORM callwindow.reject('campaigns_name_required', 'campaigns', 'name', 'campaign name is required and may not be blank');
  END IF;
  IF NEW.client_account_id IS NULL THEN
    PERFORM callwindow.reject('campaigns_client_account_id_required', 'campaigns', 'client_account_id',
      'campaign client_account_id is required (the uuid of the Truecaller for Business account)');
  END IF;
  IF NEW.label_id IS NULL THEN
    PERFORM callwindow.reject('campaigns_label_id_required', 'campaigns', 'label_id', 'campaign label_id is required (a dynamic label of the client account)');
  END IF;
  -- The label is checked when the row is written; if it later disappears or turns static
  -- the planner reports it as a problem of the campaign.
  IF TG_OP = 'INSERT' OR NEW.label_id IS DISTINCT FROM OLD.label_id
     OR NEW.client_account_id IS DISTINCT FROM OLD.client_account_id THEN
    SELECT * INTO known_label FROM callwindow.labels l
      WHERE l.client_account_id = NEW.client_account_id AND l.id = NEW.label_id;
    IF NOT FOUND THEN
      PERFORM callwindow.reject('campaigns_label_known', 'campaigns', 'label_id',
        format('campaign label_id %s is not a label of client account %s: run "callwindow labels sync" or insert the label into callwindow.labels first',
               NEW.label_id, NEW.client_account_id));
    END IF;
    IF known_label.label_type <> 'dynamic' THEN
      PERFORM callwindow.reject('campaigns_label_dynamic', 'campaigns', 'label_id',
        format('campaign label_id %s is a %s label: only dynamic labels can be used for call personalisation', NEW.label_id, known_label.label_type));
    END IF;
  END IF;
  PERFORM callwindow.check_texts('campaign', 'campaigns', NEW.label_name, NEW.call_reason);
  IF NEW.starts_at IS NULL OR NEW.ends_at IS NULL THEN
    PERFORM callwindow.reject('campaigns_period_valid', 'campaigns', CASE WHEN NEW.starts_at IS NULL THEN 'starts_at' ELSE 'ends_at' END,
      'campaign starts_at and ends_at are both required');
  END IF;
  IF NEW.ends_at <= NEW.starts_at THEN
    PERFORM callwindow.reject('campaigns_period_valid', 'campaigns', 'ends_at',
      format('campaign ends_at (%s) must be after starts_at (%s)', NEW.ends_at, NEW.starts_at));
  END IF;
  IF NEW.ends_at - NEW.starts_at > interval '3660 days' THEN
    PERFORM callwindow.reject('campaigns_period_valid', 'campaigns', 'ends_at',
      format('campaign period from %s to %s is longer than 10 years: split it into several campaigns', NEW.starts_at, NEW.ends_at));
  END IF;
  IF NEW.time_zone IS NULL THEN
    NEW.time_zone := 'UTC';
  END IF;
  IF (TG_OP = 'INSERT' OR NEW.time_zone IS DISTINCT FROM OLD.time_zone)
     AND NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = NEW.time_zone) THEN
    PERFORM callwindow.reject('campaigns_time_zone_known', 'campaigns', 'time_zone',
      format('campaign time_zone %s is not a time zone name the server knows: use an IANA name such as "Europe/Berlin" or "UTC"', to_json(NEW.time_zone)));
  END IF;
  IF (NEW.daily_start IS NULL) <> (NEW.daily_end IS NULL) THEN
    PERFORM callwindow.reject('campaigns_daily_hours_valid', 'campaigns', CASE WHEN NEW.daily_start IS NULL THEN 'daily_start' ELSE 'daily_end' END,
      'campaign daily_start and daily_end must be given together (or both left NULL for round-the-clock windows)');
  END IF;
  IF NEW.daily_start = NEW.daily_end THEN
    PERFORM callwindow.reject('campaigns_daily_hours_valid', 'campaigns', 'daily_end',
      format('campaign daily_start and daily_end are both %s: a daily window needs two different times', NEW.daily_start));
  END IF;
  IF NEW.weekdays IS NOT NULL THEN
    IF cardinality(NEW.weekdays) = 0 THEN
      PERFORM callwindow.reject('campaigns_weekdays_valid', 'campaigns', 'weekdays',
        'campaign weekdays is empty: list ISO weekdays (Monday = 1 … Sunday = 7) or use NULL for every day');
    END IF;
    IF NEW.daily_start IS NULL THEN
      PERFORM callwindow.reject('campaigns_weekdays_valid', 'campaigns', 'weekdays',
        'campaign weekdays needs daily_start and daily_end: weekdays only select days for daily hours');
    END IF;
    FOREACH day IN ARRAY NEW.weekdays LOOP
      IF day IS NULL OR day < 1 OR day > 7 THEN
        PERFORM callwindow.reject('campaigns_weekdays_valid', 'campaigns', 'weekdays',
          format('campaign weekdays %s holds %s: ISO weekdays are 1 (Monday) to 7 (Sunday)', NEW.weekdays, coalesce(day::text, 'NULL')));
      END IF;
    END LOOP;
    NEW.weekdays := ARRAY(SELECT DISTINCT d FROM unnest(NEW.weekdays) d ORDER BY d);
  END IF;
  IF NEW.lead IS NULL OR NEW.lead < interval '0' THEN
    PERFORM callwindow.reject('campaigns_lead_valid', 'campaigns', 'lead',
      format('campaign lead %s is negative: it is how long before each window starts its records must be pushed', coalesce(NEW.lead::text, 'NULL')));
  END IF;
  IF NEW.lead > interval '7 days' THEN
    PERFORM callwindow.reject('campaigns_lead_valid', 'campaigns', 'lead',
      format('campaign lead %s is longer than 7 days', NEW.lead));
  END IF;
  IF NEW.status IS NULL OR NEW.status NOT IN ('active', 'paused', 'cancelled') THEN
    PERFORM callwindow.reject('campaigns_status_valid', 'campaigns', 'status',
      format('campaign status %s is not valid: expected "active", "paused" or "cancelled"', coalesce(to_json(NEW.status)::text, 'NULL')));
  END IF;
  IF NEW.priority IS NULL THEN
    NEW.priority := 0;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER campaigns_validate BEFORE INSERT OR UPDATE ON callwindow.campaigns
  FOR EACH ROW EXECUTE FUNCTION callwindow.campaigns_validate();

-- Callers: the business's phone numbers that place the calls.
CREATE TABLE callwindow.campaign_callers (
  campaign_id bigint NOT NULL,
  phone text NOT NULL,
  CONSTRAINT campaign_callers_pkey PRIMARY KEY (campaign_id, phone),
  CONSTRAINT campaign_callers_campaign_exists FOREIGN KEY (campaign_id)
    REFERENCES callwindow.campaigns (id) ON DELETE CASCADE
);

CREATE FUNCTION callwindow.campaign_callers_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.phone := callwindow.checked_phone(NEW.phone, 'caller phone', 'campaign_callers_phone_valid', 'campaign_callers', 'phone');
  RETURN NEW;
END $$;

CREATE TRIGGER campaign_callers_validate BEFORE INSERT OR UPDATE ON callwindow.campaign_callers
  FOR EACH ROW EXECUTE FUNCTION callwindow.campaign_callers_validate();

-- Receivers: the people called; call_reason and label_name override the campaign's.
CREATE TABLE callwindow.campaign_receivers (
  campaign_id bigint NOT NULL,
  phone text NOT NULL,
  call_reason text,
  label_name text,
  CONSTRAINT campaign_receivers_pkey PRIMARY KEY (campaign_id, phone),
  CONSTRAINT campaign_receivers_campaign_exists FOREIGN KEY (campaign_id)
    REFERENCES callwindow.campaigns (id) ON DELETE CASCADE
);

CREATE FUNCTION callwindow.campaign_receivers_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.phone := callwindow.checked_phone(NEW.phone, 'receiver phone', 'campaign_receivers_phone_valid', 'campaign_receivers', 'phone');
  IF NEW.call_reason IS NOT NULL OR NEW.label_name IS NOT NULL THEN
    PERFORM callwindow.check_texts('receiver', 'campaign_receivers', NEW.label_name, NEW.call_reason);
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER campaign_receivers_validate BEFORE INSERT OR UPDATE ON callwindow.campaign_receivers
  FOR EACH ROW EXECUTE FUNCTION callwindow.campaign_receivers_validate();

-- Explicit caller–receiver pairs, in addition to every caller × every receiver; their
-- call_reason and label_name beat the receiver's and the campaign's.
CREATE TABLE callwindow.campaign_pairs (
  campaign_id bigint NOT NULL,
  caller text NOT NULL,
  receiver text NOT NULL,
  call_reason text,
  label_name text,
  CONSTRAINT campaign_pairs_pkey PRIMARY KEY (campaign_id, caller, receiver),
  CONSTRAINT campaign_pairs_campaign_exists FOREIGN KEY (campaign_id)
    REFERENCES callwindow.campaigns (id) ON DELETE CASCADE
);

CREATE FUNCTION callwindow.campaign_pairs_validate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.caller := callwindow.checked_phone(NEW.caller, 'pair caller phone', 'campaign_pairs_caller_valid', 'campaign_pairs', 'caller');
  NEW.receiver := callwindow.checked_phone(NEW.receiver, 'pair receiver phone', 'campaign_pairs_receiver_valid', 'campaign_pairs', 'receiver');
  IF NEW.call_reason IS NOT NULL OR NEW.label_name IS NOT NULL THEN
    PERFORM callwindow.check_texts('pair', 'campaign_pairs', NEW.label_name, NEW.call_reason);
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER campaign_pairs_validate BEFORE INSERT OR UPDATE ON callwindow.campaign_pairs
  FOR EACH ROW EXECUTE FUNCTION callwindow.campaign_pairs_validate();
