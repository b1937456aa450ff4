-- Every statement converts between epoch milliseconds (the API's unit, and the daemon's) and
-- timestamptz with callwindow.at_ms and callwindow.ms_of. They were IMMUTABLE but built from
-- STABLE operators (timestamptz + interval, extract from timestamptz), so PostgreSQL could not
-- inline them: each call ran a SQL function of its own, seven per claimed record and three
-- per result. These bodies are the same arithmetic done in UTC on timestamp (IMMUTABLE
-- operators only), so the planner inlines them into the statements. The results are the same,
-- to the millisecond, whatever the session's time zone. Replacing a function takes no lock on
-- the queue, and daemons of the previous build keep working with the new bodies.
CREATE OR REPLACE FUNCTION callwindow.at_ms(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT timezone('UTC', timestamp 'epoch' + ms * interval '1 millisecond') $$;

CREATE OR REPLACE FUNCTION callwindow.ms_of(at timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT floor(extract(epoch FROM timezone('UTC', at)) * 1000)::bigint $$;
