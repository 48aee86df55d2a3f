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

-- run a curl command line on the server; its output parsed as JSON
CREATE FUNCTION emu.curl_json(cmd text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    reply text;
BEGIN
    IF to_regclass('pg_temp.emu_reply') IS NULL THEN
        CREATE TEMP TABLE emu_reply (line text);
    END IF;
    TRUNCATE emu_reply;
    -- \x01/\x02 as quote and delimiter: every output line lands whole in one column
    EXECUTE format('COPY emu_reply FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
                   cmd, e'\x01', e'\x02');
    SELECT string_agg(line, e'\n') INTO reply FROM emu_reply;
    RETURN reply::jsonb;
END $$;

-- call a control of the emulator; returns its JSON reply
CREATE FUNCTION emu.call(method text, path text, body jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE sql AS $$
SELECT emu.curl_json(format('curl -sS -X %s -H "Content-Type: application/json" %s %s',
                            method,
                            CASE WHEN body IS NULL THEN '' ELSE '--data-binary ' || emu.shq(body::text) END,
                            emu.shq(current_setting('twilio_numbers.api_url') || path)));
$$;

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

-- run a statement; return its SQLSTATE and message, or 'ok' (account ids,
-- which depend on the order tests run in, print as N)
CREATE FUNCTION emu.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM, 'account [0-9]+', 'account N', 'g'),
                                              '(HR|PN)[0-9a-f]{32}', '\1…', 'g');
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
    message := regexp_replace(regexp_replace(message, 'account [0-9]+', 'account N', 'g'),
                              '(HR|PN)[0-9a-f]{32}', '\1…', 'g');
    detail := regexp_replace(detail, '(HR|PN)[0-9a-f]{32}', '\1…', 'g');
END $$;

-- call Twilio's API on the emulator (as the tests' API key), form-encoded
CREATE FUNCTION emu.twilio(method text, path text, form jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
SELECT emu.curl_json(format('curl -sS -X %s -u %s %s %s', method,
                            'SK00000000000000000000000000000001:ap1-s3cret-0f-the-test-key',
                            (SELECT coalesce(string_agg('--data-urlencode ' || emu.shq(key || '=' || value), ' '), '')
                             FROM jsonb_each_text(form)),
                            emu.shq(current_setting('twilio_numbers.api_url') || path)));
$$;

-- the main account's 2010 API path
CREATE FUNCTION emu.account() RETURNS text LANGUAGE sql
AS $$ SELECT '/2010-04-01/Accounts/' || current_setting('twilio_numbers.account_sid') $$;

-- wait (up to timeout_s) until a query returns true; the background worker
-- acts after commit, so tests wait for its effects instead of sleeping
CREATE FUNCTION emu.wait_until(cond text, timeout_s int DEFAULT 20) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        EXECUTE cond INTO ok;
        IF ok THEN RETURN true; END IF;
        IF clock_timestamp() > deadline THEN RETURN false; END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

-- the queue is empty of pending work (hosted orders are watched as long as
-- they live: their polls do not count; nor does an undo that only watches for
-- a request without a reply until its attempt's deadline)
CREATE FUNCTION emu.queue_drained() RETURNS boolean LANGUAGE sql
AS $$ SELECT emu.wait_until('SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue '
                            '                   WHERE status = ''pending'' AND kind <> ''hosted_poll'' '
                            '                     AND NOT coalesce(payload ? ''watching_until'', false)) '
                            'AND NOT EXISTS (SELECT 1 FROM twilio_numbers.inflight)') $$;

-- the numbers the emulator says the account owns
CREATE FUNCTION emu.owned() RETURNS SETOF text LANGUAGE sql
AS $$ SELECT n->>'phone_number' FROM jsonb_array_elements(emu.state()->'numbers') n ORDER BY 1 $$;

-- the worker's start-up reconcile is done before the tests count requests
SELECT emu.wait_until('SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status');
SELECT database, starts, last_reconcile_findings, last_error FROM twilio_numbers.worker_status;

SELECT emu.reset();
SELECT count(*) AS requests FROM emu.log;

-- the extension's objects
SELECT extname, extversion, extrelocatable, n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'twilio_numbers';
