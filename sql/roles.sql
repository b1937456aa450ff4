-- CallWindow: database roles. Applied by an administrator with psql, NOT a migration
-- (`callwindow migrate` only reads files whose names start with a number):
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f sql/roles.sql
--
-- Run it as a superuser, or as the owner of schema callwindow if that role has CREATEROLE,
-- after the first `callwindow migrate` and again after every later migrate (new tables get no
-- privileges by themselves, and a migration that replaces a function resets SECURITY DEFINER). It is
-- idempotent and converges: each group role ends up with exactly the privileges below on this
-- database, whatever it held before (all in one transaction, so a running daemon never sees a
-- gap). Roles are cluster-wide; privileges are per database, so apply it in each database.
--
-- Five NOLOGIN group roles; grant them to your login roles:
--
--   CREATE ROLE scheduler LOGIN PASSWORD '…' IN ROLE callwindow_app;
--
--   callwindow_app     what `callwindow run`, `status`, `audit export` and `labels sync` need,
--                      and nothing else: it reads the campaign tables, writes the scheduler's
--                      tables (windows, deliveries, campaign_state, the audit trail — insert
--                      only —, tokens, token_mints) and labels. It creates monthly audit
--                      partitions through callwindow.ensure_push_attempt_partitions, which runs
--                      as its owner (SECURITY DEFINER), so the app role owns no table.
--   callwindow_author  writes campaigns, campaign_callers, campaign_receivers,
--                      campaign_pairs and do_not_contact (the campaign triggers read labels, so it reads labels)
--                      and reads the progress views; nothing the scheduler writes.
--   callwindow_reader  reads every table people read and the progress views; writes nothing.
--                      Of callwindow.tokens it sees every column but the ciphertext.
--   callwindow_admin   may run callwindow.erase_phone (`callwindow erase`), which replaces one
--                      person's phone number with a keyed pseudonym; nothing else.
--   callwindow_operator may run callwindow.operator_set_status, the dashboard's pause, resume and
--                      cancel buttons (http.actions: true); nothing else. The daemon's login role
--                      gets it only where an administrator decides the dashboard may change
--                      campaigns: GRANT callwindow_operator TO scheduler; (this file never does).
--
-- `callwindow audit prune` drops whole months of the audit trail, which needs ownership of
-- the partitions: it stays with the schema owner (run it with the owner's URL, e.g. from the
-- administrator's cron). Its function is not executable by PUBLIC.
--
-- Other names: psql -v app_role=NAME -v author_role=NAME -v reader_role=NAME -v admin_role=NAME
--              -v operator_role=NAME -f sql/roles.sql
--
-- The schema owner should be a dedicated role without SUPERUSER: the partition function runs
-- with its rights.

\set ON_ERROR_STOP on
\if :{?app_role}
\else
  \set app_role callwindow_app
\endif
\if :{?author_role}
\else
  \set author_role callwindow_author
\endif
\if :{?reader_role}
\else
  \set reader_role callwindow_reader
\endif
\if :{?admin_role}
\else
  \set admin_role callwindow_admin
\endif
\if :{?operator_role}
\else
  \set operator_role callwindow_operator
\endif

BEGIN;

-- The names, for the DO blocks below (psql does not substitute variables inside $$ … $$).
SELECT set_config('callwindow_roles.app', :'app_role', true),
       set_config('callwindow_roles.author', :'author_role', true),
       set_config('callwindow_roles.reader', :'reader_role', true),
       set_config('callwindow_roles.admin', :'admin_role', true),
       set_config('callwindow_roles.operator', :'operator_role', true);

DO $roles$
DECLARE
  name text;
BEGIN
  IF to_regclass('callwindow.push_attempts') IS NULL THEN
    RAISE EXCEPTION 'schema callwindow is missing or incomplete: run "callwindow migrate" before sql/roles.sql';
  END IF;
  FOREACH name IN ARRAY ARRAY[current_setting('callwindow_roles.app'), current_setting('callwindow_roles.author'),
                              current_setting('callwindow_roles.reader'), current_setting('callwindow_roles.admin'),
                              current_setting('callwindow_roles.operator')] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a concurrent run (roles are cluster-wide)
      END;
    END IF;
  END LOOP;
END $roles$;

DO $grants$
DECLARE
  app text := quote_ident(current_setting('callwindow_roles.app'));
  author text := quote_ident(current_setting('callwindow_roles.author'));
  reader text := quote_ident(current_setting('callwindow_roles.reader'));
  role text;
BEGIN
  -- Start from nothing, so privileges granted by hand or by an older roles.sql go away.
  FOREACH role IN ARRAY ARRAY[app, author, reader] LOOP
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA callwindow FROM %s', role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA callwindow FROM %s', role);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA callwindow FROM %s', role);
    EXECUTE format('REVOKE ALL ON SCHEMA callwindow FROM %s', role);
    EXECUTE format('GRANT USAGE ON SCHEMA callwindow TO %s', role);
  END LOOP;

  -- callwindow_app: the daemon, status, audit export, labels sync.
  EXECUTE format('GRANT SELECT ON callwindow.campaigns, callwindow.campaign_callers, callwindow.campaign_receivers,
                  callwindow.campaign_pairs, callwindow.do_not_contact, callwindow.schema_migrations TO %s', app);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON callwindow.labels, callwindow.windows, callwindow.deliveries,
                  callwindow.tokens TO %s', app);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON callwindow.campaign_state, callwindow.token_mints TO %s', app);
  -- The audit trail: read and append (its triggers refuse UPDATE, DELETE and TRUNCATE anyway).
  EXECUTE format('GRANT SELECT, INSERT ON callwindow.push_attempts, callwindow.window_outcomes TO %s', app);
  EXECUTE format('GRANT SELECT ON callwindow.campaign_progress, callwindow.window_progress TO %s', app);
  EXECUTE format('GRANT USAGE ON SEQUENCE %s, %s, %s TO %s',
                 pg_get_serial_sequence('callwindow.windows', 'id'), pg_get_serial_sequence('callwindow.deliveries', 'id'),
                 pg_get_serial_sequence('callwindow.token_mints', 'id'), app);

  -- callwindow_author: the campaign tables only.
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON callwindow.campaigns, callwindow.campaign_callers,
                  callwindow.campaign_receivers, callwindow.campaign_pairs, callwindow.do_not_contact TO %s', author);
  EXECUTE format('GRANT SELECT ON callwindow.labels, callwindow.campaign_progress, callwindow.window_progress TO %s', author);
  EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', pg_get_serial_sequence('callwindow.campaigns', 'id'), author);

  -- callwindow_reader: everything people read; of tokens every column but the ciphertext.
  EXECUTE format('GRANT SELECT ON callwindow.campaigns, callwindow.campaign_callers, callwindow.campaign_receivers,
                  callwindow.campaign_pairs, callwindow.do_not_contact, callwindow.labels, callwindow.windows, callwindow.deliveries,
                  callwindow.push_attempts, callwindow.window_outcomes, callwindow.campaign_state, callwindow.token_mints, callwindow.schema_migrations,
                  callwindow.campaign_progress, callwindow.window_progress TO %s', reader);
  EXECUTE format('GRANT SELECT (client_account_id, fingerprint, minted_at, expires_at, lease_owner, lease_expires_at, revoked_at)
                  ON callwindow.tokens TO %s', reader);
END $grants$;

-- Audit partitions: created by the owner's function on the app role's behalf. A fixed
-- search_path keeps a caller's objects out of it; PUBLIC may not call it.
ALTER FUNCTION callwindow.ensure_push_attempt_partitions(timestamptz, integer)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION callwindow.ensure_push_attempt_partitions(timestamptz, integer) FROM PUBLIC;
SELECT format('GRANT EXECUTE ON FUNCTION callwindow.ensure_push_attempt_partitions(timestamptz, integer) TO %I', :'app_role') \gexec

-- Pruning stays with the owner: nobody else may call it (it could not drop the partitions anyway).
REVOKE ALL ON FUNCTION callwindow.drop_push_attempt_partitions(timestamptz) FROM PUBLIC;

-- Erasure (`callwindow erase`): runs as the owner, callable only by the owner and the admin role.
ALTER FUNCTION callwindow.erase_phone(uuid, text, text, timestamptz, text)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION callwindow.erase_phone(uuid, text, text, timestamptz, text) FROM PUBLIC;
SELECT format('GRANT USAGE ON SCHEMA callwindow TO %I', :'admin_role') \gexec
SELECT format('GRANT EXECUTE ON FUNCTION callwindow.erase_phone(uuid, text, text, timestamptz, text) TO %I', :'admin_role') \gexec

-- The dashboard's actions: run as the owner, callable only by the owner and the operator role.
ALTER FUNCTION callwindow.operator_set_status(bigint, text)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION callwindow.operator_set_status(bigint, text) FROM PUBLIC;
SELECT format('GRANT USAGE ON SCHEMA callwindow TO %I', :'operator_role') \gexec
SELECT format('GRANT EXECUTE ON FUNCTION callwindow.operator_set_status(bigint, text) TO %I', :'operator_role') \gexec

COMMIT;
