-- Change notifications name the client account, so a daemon leading many accounts plans only
-- the one that changed (issue 13: idle cost independent of the number of accounts).
--
-- Payload on callwindow_changes: '<table>:<client_account_id>', one NOTIFY per statement and
-- account (a statement that changes no row sends none). The set tables carry no account: it is
-- read from their campaign. A daemon that receives a payload without ':' (an older schema)
-- plans every account it leads.
--
-- Transition tables are allowed for one event per trigger only, hence three triggers a table.

CREATE FUNCTION callwindow.notify_account_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  account uuid;
BEGIN
  IF TG_ARGV[0] = 'campaign' THEN
    FOR account IN
      SELECT DISTINCT c.client_account_id FROM changed r JOIN callwindow.campaigns c ON c.id = r.campaign_id
    LOOP
      PERFORM pg_notify('callwindow_changes', TG_TABLE_NAME || ':' || account);
    END LOOP;
  ELSE
    FOR account IN SELECT DISTINCT r.client_account_id FROM changed r LOOP
      PERFORM pg_notify('callwindow_changes', TG_TABLE_NAME || ':' || account);
    END LOOP;
  END IF;
  RETURN NULL;
END $$;

DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('campaigns', 'account'), ('campaign_callers', 'campaign'), ('campaign_receivers', 'campaign'),
      ('campaign_pairs', 'campaign'), ('labels', 'account'), ('do_not_contact', 'account')) AS v(name, keyed_by)
  LOOP
    EXECUTE format('DROP TRIGGER %I ON callwindow.%I', t.name || '_notify', t.name);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON callwindow.%I REFERENCING NEW TABLE AS changed
                    FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_account_changes(%L)',
                   t.name || '_notify_insert', t.name, t.keyed_by);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON callwindow.%I REFERENCING NEW TABLE AS changed
                    FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_account_changes(%L)',
                   t.name || '_notify_update', t.name, t.keyed_by);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON callwindow.%I REFERENCING OLD TABLE AS changed
                    FOR EACH STATEMENT EXECUTE FUNCTION callwindow.notify_account_changes(%L)',
                   t.name || '_notify_delete', t.name, t.keyed_by);
  END LOOP;
END $$;

DROP FUNCTION callwindow.notify_changes();
