--
-- Test helpers: drive the Twilio emulator from SQL.
--
-- The cluster's twilio_numbers.api_url points at test/twilio-emulator; its
-- controls (/_emulator/...) are reached with curl through COPY FROM PROGRAM,
-- so tests can assert on what was really sent to "Twilio".
--
CREATE SCHEMA emu;

-- a shell word: 'it''s' -> 'it'\''s'
CREATE FUNCTION emu.shq(s text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT '''' || replace(s, '''', '''\''''') || '''' $$;

-- call a control of the emulator; returns its JSON reply
CREATE FUNCTION emu.call(method text, path text, body jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    cmd text;
    reply text;
BEGIN
    IF to_regclass('pg_temp.emu_reply') IS NULL THEN
        CREATE TEMP TABLE emu_reply (line text);
    END IF;
    TRUNCATE emu_reply;
    cmd := format('curl -sS -X %s -H "Content-Type: application/json" %s %s',
                  method,
                  CASE WHEN body IS NULL THEN '' ELSE '--data-binary ' || emu.shq(body::text) END,
                  emu.shq(current_setting('twilio_numbers.api_url') || path));
    EXECUTE format('COPY emu_reply FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
                   cmd, e'\x01', e'\x02');
    SELECT string_agg(line, e'\n') INTO reply FROM emu_reply;
    RETURN reply::jsonb;
END $$;

CREATE FUNCTION emu.reset() RETURNS void LANGUAGE sql
AS $$ SELECT emu.call('POST', '/_emulator/reset'); $$;
CREATE FUNCTION emu.requests() RETURNS SETOF jsonb LANGUAGE sql
AS $$ SELECT jsonb_array_elements(emu.call('GET', '/_emulator/requests')); $$;
CREATE FUNCTION emu.clear_requests() RETURNS void LANGUAGE sql
AS $$ SELECT emu.call('DELETE', '/_emulator/requests'); $$;
CREATE FUNCTION emu.fault(spec jsonb) RETURNS void LANGUAGE sql
AS $$ SELECT emu.call('POST', '/_emulator/faults', spec); $$;
CREATE FUNCTION emu.clear_faults() RETURNS void LANGUAGE sql
AS $$ SELECT emu.call('DELETE', '/_emulator/faults'); $$;
CREATE FUNCTION emu.state() RETURNS jsonb LANGUAGE sql
AS $$ SELECT emu.call('GET', '/_emulator/state'); $$;

-- the requests as rows: method, path without the account prefix, query, form, status
CREATE VIEW emu.log AS
SELECT (r->>'seq')::int AS seq, r->>'method' AS method,
       regexp_replace(r->>'path', '^/2010-04-01/Accounts/AC[0-9a-f]{32}', '') AS path,
       r->'query' AS query, r->'form' AS form, (r->>'status')::int AS status,
       (r->>'twilio_code')::int AS twilio_code
FROM emu.requests() r;

-- run a statement; return its SQLSTATE and message, or 'ok'
CREATE FUNCTION emu.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- the same with the error's detail and hint
CREATE FUNCTION emu.try_full(stmt text, OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    state := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;

SELECT emu.reset();
SELECT count(*) AS requests FROM emu.log;

-- the extension's objects
SELECT extname, extversion, extrelocatable, n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'twilio_numbers';
