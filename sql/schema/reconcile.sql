--------------------------------------------------------------------------
-- Reconcile: the database and Twilio compared; only what is provably ours
-- is ever released
--------------------------------------------------------------------------

-- Every difference reconcile found, and what it did about it.
CREATE TABLE drift (
    drift_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    found_at     timestamptz NOT NULL DEFAULT now(),
    finding      text NOT NULL
                 CHECK (finding IN ('orphan_at_twilio', 'vanished_at_twilio', 'config_drift', 'unmanaged_at_twilio',
                                    'unproven_after_failover', 'account_unreachable')),
    phone_number text,
    twilio_sid   text,
    number_id    bigint REFERENCES owned_numbers,
    account_id   bigint REFERENCES accounts,
    detail       jsonb NOT NULL DEFAULT '{}',
    action       text NOT NULL
);
COMMENT ON TABLE drift IS 'Differences between owned_numbers and Twilio found by reconcile, with the action taken.';
CREATE INDEX drift_found_at ON drift (found_at);
SELECT pg_catalog.pg_extension_config_dump('drift', '');
SELECT pg_catalog.pg_extension_config_dump('drift_drift_id_seq', '');

-- The main account, the subaccounts a DBA mapped, and those our live
-- numbers are in: the only accounts reconcile lists.
CREATE FUNCTION _managed_accounts(p_main text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT array_agg(s ORDER BY s <> p_main, s)
        FROM (SELECT p_main AS s
              UNION SELECT a.twilio_account_sid FROM twilio_numbers.accounts a
                    WHERE a.twilio_account_sid IS NOT NULL
              UNION SELECT o.twilio_account_sid FROM twilio_numbers.live_numbers o
                    WHERE o.twilio_account_sid IS NOT NULL) m);

-- A pass's start (numbers_reconcile, C): what it reads before the listing —
-- the live rows, the open attempts, the managed accounts — and an empty work
-- table for the numbers Twilio lists, pg_temp.tn_reconcile_seen (dropped at
-- commit).  The table's statistics come from a small sample: the default one
-- holds 30,000 rows of resources in the backend's memory while ANALYZE runs,
-- memory that grew with the account.
CREATE FUNCTION _reconcile_begin(p_main text, OUT live bigint[], OUT attempts bigint[], OUT accounts text[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    live := (SELECT coalesce(array_agg(l.number_id), '{}') FROM twilio_numbers.live_numbers l);
    attempts := (SELECT coalesce(array_agg(a.attempt_id), '{}') FROM twilio_numbers.purchase_attempts a
                 WHERE a.state = 'open');
    accounts := twilio_numbers._managed_accounts(p_main);
    IF to_regclass('pg_temp.tn_reconcile_seen') IS NULL THEN
        CREATE TEMP TABLE tn_reconcile_seen
            (sid text PRIMARY KEY, phone text, account_sid text, created timestamptz, r jsonb) ON COMMIT DROP;
        ALTER TABLE pg_temp.tn_reconcile_seen ALTER sid SET STATISTICS 10, ALTER phone SET STATISTICS 10,
            ALTER account_sid SET STATISTICS 10, ALTER created SET STATISTICS 0, ALTER r SET STATISTICS 0;
    ELSE
        TRUNCATE pg_temp.tn_reconcile_seen;
    END IF;
END $$;
REVOKE ALL ON FUNCTION _reconcile_begin(text) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_begin IS
  'Reconcile (C): the live rows, open attempts and managed accounts read before the listing; an empty work table.';

-- One page of an account's listing at Twilio (IncomingPhoneNumbers), into the
-- work table; returns how many numbers it held.
CREATE FUNCTION _reconcile_listed(p_page jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, created, r)
    SELECT e->>'sid', e->>'phone_number', e->>'account_sid', twilio_numbers._twilio_time(e->>'date_created'), e
    FROM jsonb_array_elements(p_page->'incoming_phone_numbers') e
    ON CONFLICT (sid) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION _reconcile_listed(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_listed IS 'Reconcile (C): one page of a Twilio listing into the work table.';

-- The live rows read before the listing (p_live) that are active or past
-- due and that no listing showed: the C looks each up by its SID (with the
-- Twilio account its row names, p_main when none).  Volatile: it must see
-- the numbers this very pass wrote into the work table.
CREATE FUNCTION _reconcile_unseen(p_live bigint[], p_main text)
RETURNS TABLE (twilio_sid text, twilio_account_sid text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT o.twilio_sid, coalesce(o.twilio_account_sid, p_main)
    FROM twilio_numbers.owned_numbers o
    WHERE o.number_id = ANY (p_live) AND o.status IN ('active', 'past_due')
      AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t WHERE t.sid = o.twilio_sid);
END $$;
REVOKE ALL ON FUNCTION _reconcile_unseen(bigint[], text) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_unseen IS
  'Reconcile (C): the live rows no listing showed, to be looked up one by one.';

-- What the look-up of an unseen row found (r: Twilio's resource), into the
-- work table; r null: the look-up failed, so the number may still be there
-- (unsure: not vanished).
CREATE FUNCTION _reconcile_found(p_sid text, r jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, created, r)
    VALUES (p_sid, r->>'phone_number', r->>'account_sid', twilio_numbers._twilio_time(r->>'date_created'), r)
    ON CONFLICT (sid) DO NOTHING;
END $$;
REVOKE ALL ON FUNCTION _reconcile_found(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_found IS 'Reconcile (C): what the look-up of an unseen row found, into the work table.';

-- Compare the rows seen before the listing (p_seen) with the numbers Twilio
-- listed (pg_temp.tn_reconcile_seen) in the accounts of p_listed (p_failed:
-- accounts whose listing failed, with why), judge the open attempts read
-- before the listing (p_attempts), act and record each difference.
--
-- It never waits for an application: a row it would change, or whose
-- number or account a row it writes refers to, that another transaction
-- holds locked (FOR UPDATE, say) is skipped (SKIP LOCKED) and met again by
-- the next pass; the rest is reconciled.
CREATE FUNCTION _reconcile(p_seen bigint[], p_listed text[], p_failed jsonb, p_attempts bigint[],
                           p_main text, p_epoch text)
RETURNS SETOF drift
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- statistics for the comparison's plans: without them a big account's
    -- joins go quadratic (a small sample: _reconcile_begin)
    ANALYZE pg_temp.tn_reconcile_seen;

    -- a row left releasing whose release job died (an older dead letter, an
    -- outage before outages stopped counting): queued again
    INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload)
    SELECT 'release', o.number_id, o.phone_number, o.twilio_sid, o.twilio_account_sid,
           '{"reason": "reconcile: its release job was dead"}'
    FROM twilio_numbers.owned_numbers o
    WHERE o.number_id IN (SELECT l.number_id FROM twilio_numbers.owned_numbers l
                          WHERE l.status = 'releasing' AND l.number_id = ANY (p_seen)
                          FOR KEY SHARE SKIP LOCKED)
      AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                      WHERE q.number_id = o.number_id AND q.kind = 'release' AND q.status <> 'dead');

    -- an account that could not be listed: reported, left out of every
    -- conclusion that needs its whole list
    RETURN QUERY
    INSERT INTO twilio_numbers.drift (finding, detail, action)
    SELECT 'account_unreachable', jsonb_build_object('account_sid', f.key, 'error', f.value),
           'none: listed again at the next pass'
    FROM jsonb_each_text(p_failed) f
    RETURNING *;

    -- every number at Twilio that no live row owns, judged:
    --   queued     its release or compensation is queued already;
    --   ours       a row of ours released it, or an attempt of this epoch
    --              created it and is over: released (compensate job);
    --   unproven   an attempt of another epoch (a promoted standby, a
    --              restored copy) may have created it: reported, never released;
    --   unmanaged  everything else: someone else's, reported once, never touched
    RETURN QUERY
    WITH unowned AS MATERIALIZED (
        SELECT t.sid, t.phone, t.account_sid, t.r,
               EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                       WHERE q.twilio_sid = t.sid AND q.status = 'pending') AS queued,
               EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.twilio_sid = t.sid) AS released_here,
               -- the attempt that created it: by the SID it recorded, or (a crash
               -- came before it could) by what it asked for, when and where
               (SELECT a.attempt_id FROM twilio_numbers.purchase_attempts a
                WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
                  AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
                  AND (a.twilio_sid = t.sid
                       -- (a request of it that got no reply may land late: even
                       -- an attempt that has a SID may have made this one too)
                       OR (a.phone_number = t.phone AND a.twilio_account_sid = t.account_sid
                           AND twilio_numbers._within_attempt(t.created, a.started_at, a.deadline)
                           AND twilio_numbers._configured_as(t.r, a.request_fields, a.request_md5)))
                ORDER BY a.twilio_sid IS NOT NULL DESC, a.recorded_in = p_epoch DESC, a.attempt_id DESC
                LIMIT 1) AS attempt_id
        FROM pg_temp.tn_reconcile_seen t
        WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.live_numbers o WHERE o.twilio_sid = t.sid)
          -- a hosted order of ours completing: the worker is about to write its number
          AND NOT EXISTS (SELECT 1 FROM twilio_numbers.hosted_orders h
                          WHERE h.number_id IS NULL
                            AND (h.incoming_phone_number_sid = t.sid
                                 OR (h.phone_number = t.phone AND h.status NOT IN ('failed', 'canceled'))))
          -- a purchase in flight decides for itself
          AND NOT twilio_numbers._purchase_in_flight(t.phone)
          AND NOT twilio_numbers._sid_in_flight(t.sid)),
    judged AS MATERIALIZED (
        SELECT u.*, a.recorded_in,
               CASE WHEN u.queued THEN 'queued'
                    -- its attempt's undo is pending (and watching for it)
                    WHEN EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                                 WHERE q.attempt_id = u.attempt_id AND q.status = 'pending') THEN 'queued'
                    -- let go means let go: a number of ours that vanished or was
                    -- released and came back is someone else's now
                    WHEN u.released_here THEN 'let_go'
                    WHEN a.recorded_in = p_epoch THEN 'ours'
                    WHEN a.attempt_id IS NOT NULL THEN 'unproven'
                    ELSE 'unmanaged' END AS verdict
        FROM unowned u LEFT JOIN twilio_numbers.purchase_attempts a ON a.attempt_id = u.attempt_id),
    -- a number reported before whose row another transaction holds (a DBA
    -- adopting it): left for the next pass
    free_kept AS MATERIALIZED (
        SELECT u.twilio_sid FROM twilio_numbers.unmanaged_at_twilio u
        WHERE u.twilio_sid IN (SELECT j.sid FROM judged j WHERE j.verdict IN ('unproven', 'unmanaged', 'let_go'))
        FOR NO KEY UPDATE SKIP LOCKED),
    compensated AS (
        INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload,
                                               attempt_id)
        SELECT 'compensate', j.phone, j.sid, j.account_sid, '{"reason": "reconcile"}', j.attempt_id
        FROM judged j WHERE j.verdict = 'ours'
        RETURNING 1),
    unproven AS (
        UPDATE twilio_numbers.purchase_attempts a
        SET state = 'closed', outcome = 'unproven', twilio_sid = j.sid, closed_at = now()
        FROM judged j WHERE j.verdict = 'unproven' AND a.attempt_id = j.attempt_id
        RETURNING 1),
    kept AS (
        INSERT INTO twilio_numbers.unmanaged_at_twilio
            (twilio_sid, phone_number, twilio_account_sid, in_main_account, friendly_name, resource)
        SELECT j.sid, j.phone, j.account_sid, j.account_sid = p_main, j.r->>'friendly_name', j.r
        FROM judged j WHERE j.verdict IN ('unproven', 'unmanaged', 'let_go')
          AND (j.sid IN (SELECT f.twilio_sid FROM free_kept f)
               OR NOT EXISTS (SELECT 1 FROM twilio_numbers.unmanaged_at_twilio u WHERE u.twilio_sid = j.sid))
        ON CONFLICT (twilio_sid) DO UPDATE
        SET last_seen_at = now(), friendly_name = excluded.friendly_name, resource = excluded.resource,
            twilio_account_sid = excluded.twilio_account_sid, in_main_account = excluded.in_main_account
        RETURNING twilio_sid, first_seen_at = now() AS first_seen)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, detail, action)
    SELECT CASE j.verdict WHEN 'unproven' THEN 'unproven_after_failover'
                          WHEN 'unmanaged' THEN 'unmanaged_at_twilio'
                          WHEN 'let_go' THEN 'unmanaged_at_twilio'
                          ELSE 'orphan_at_twilio' END,
           j.phone, j.sid,
           jsonb_strip_nulls(jsonb_build_object('account_sid', j.account_sid, 'attempt_id', j.attempt_id,
                                                'recorded_in', j.recorded_in,
                                                'friendly_name', j.r->>'friendly_name',
                                                'let_go_number_id',
                                                CASE WHEN j.verdict = 'let_go' THEN
                                                    (SELECT max(o.number_id) FROM twilio_numbers.owned_numbers o
                                                     WHERE o.twilio_sid = j.sid) END)),
           CASE j.verdict WHEN 'queued' THEN 'none: its release is already queued'
                          WHEN 'ours' THEN 'release queued'
                          WHEN 'unproven' THEN 'none: reported, never released (attempted before a failover or restore)'
                          WHEN 'let_go' THEN 'none: let go here (vanished or released) and back at Twilio; '
                                             'reported, never touched; adoptable'
                          ELSE 'none: not bought here; reported, never touched' END
    FROM judged j
    -- (a join: a subquery per number over kept went quadratic, 21 s for
    -- 20,000 numbers someone else owns in the account)
    LEFT JOIN kept k ON k.twilio_sid = j.sid
    WHERE j.verdict = 'ours'
       -- one row per finding episode: an undo already queued is reported
       -- once, not at every pass while it runs
       OR (j.verdict = 'queued'
           AND NOT EXISTS (SELECT 1 FROM twilio_numbers.drift d
                           WHERE d.twilio_sid = j.sid AND d.finding = 'orphan_at_twilio'
                             AND d.found_at >= (SELECT min(q.created_at) FROM twilio_numbers.work_queue q
                                                WHERE q.status = 'pending'
                                                  AND (q.twilio_sid = j.sid OR q.attempt_id = j.attempt_id))))
       OR k.first_seen
    RETURNING *;

    -- a number reported unmanaged is announced once, when first seen
    PERFORM pg_notify('twilio_numbers_unmanaged',
                      json_build_object('phone_number', u.phone_number, 'twilio_sid', u.twilio_sid,
                                        'account_sid', u.twilio_account_sid)::text)
    FROM twilio_numbers.unmanaged_at_twilio u WHERE u.first_seen_at = now();
    -- and forgotten once it is gone from a fully listed account, or ours now
    DELETE FROM twilio_numbers.unmanaged_at_twilio u
    WHERE u.twilio_sid IN (SELECT g.twilio_sid FROM twilio_numbers.unmanaged_at_twilio g
                           WHERE (g.twilio_account_sid = ANY (p_listed)
                                  AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t
                                                  WHERE t.sid = g.twilio_sid))
                              OR EXISTS (SELECT 1 FROM twilio_numbers.live_numbers o
                                         WHERE o.twilio_sid = g.twilio_sid)
                           FOR UPDATE SKIP LOCKED);

    -- open attempts read before the listing whose transactions are over:
    -- a row of ours has the SID it recorded (the crash came after the commit) ...
    UPDATE twilio_numbers.purchase_attempts a
    SET state = 'closed', outcome = 'committed', closed_at = now()
    FROM twilio_numbers.owned_numbers o
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
      AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND o.twilio_sid = a.twilio_sid;
    -- ... or a job settles it: by its SID, or — a request still on its way
    -- when the crash came may land later — looking the number up until then
    -- (no SID recorded: its POST may have got no reply, and the job watches
    -- until the attempt's deadline or until it has found what that POST made)
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    SELECT 'compensate', a.phone_number, a.twilio_sid, a.twilio_account_sid,
           CASE WHEN a.twilio_sid IS NULL THEN '{"reason": "reconcile", "unresolved": 1}'::jsonb
                ELSE '{"reason": "reconcile"}'::jsonb END,
           a.attempt_id
    FROM twilio_numbers.purchase_attempts a
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
      AND a.recorded_in = p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                      WHERE q.attempt_id = a.attempt_id AND q.status = 'pending');
    -- an attempt of another epoch is never undone: reported if its number is
    -- at Twilio (above), closed either way
    UPDATE twilio_numbers.purchase_attempts a
    SET state = 'closed', outcome = 'unproven', closed_at = now()
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
      AND a.recorded_in <> p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id);
    -- a hosted order being filed when the crash came: a committed order
    -- closes it; this epoch's is undone by a job, another epoch's reported
    UPDATE twilio_numbers.purchase_attempts a
    SET state = 'closed', outcome = 'committed', closed_at = now()
    FROM twilio_numbers.hosted_orders h
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'hosted_order'
      AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND h.order_sid = a.twilio_sid;
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    SELECT 'hosted_cancel', a.phone_number, a.twilio_sid, a.twilio_account_sid, '{"reason": "reconcile"}', a.attempt_id
    FROM twilio_numbers.purchase_attempts a
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'hosted_order'
      AND a.recorded_in = p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                      WHERE q.attempt_id = a.attempt_id AND q.status = 'pending');
    RETURN QUERY
    WITH closed AS (
        UPDATE twilio_numbers.purchase_attempts a
        SET state = 'closed', outcome = 'unproven', closed_at = now()
        WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'hosted_order'
          AND a.recorded_in <> p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
        RETURNING a.*)
    INSERT INTO twilio_numbers.drift (finding, phone_number, detail, action)
    SELECT 'unproven_after_failover', c.phone_number,
           jsonb_build_object('attempt_id', c.attempt_id, 'kind', c.kind, 'recorded_in', c.recorded_in),
           'none: a hosted order may have been filed before a failover or restore; reported, never canceled'
    FROM closed c
    RETURNING *;

    -- live rows (seen before the listing) whose number Twilio no longer has
    -- (one an application holds, or whose account it holds: the next pass)
    RETURN QUERY
    WITH gone AS (
        UPDATE twilio_numbers.owned_numbers o
        SET status = 'released', released_at = now(), updated_at = now()
        WHERE o.number_id IN (SELECT v.number_id
                              FROM twilio_numbers.owned_numbers v
                              JOIN twilio_numbers.accounts a ON a.account_id = v.account_id
                              WHERE v.number_id = ANY (p_seen)
                                AND v.status IN ('active', 'past_due')
                                AND coalesce(v.twilio_account_sid, p_main) = ANY (p_listed)
                                AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t
                                                WHERE t.sid = v.twilio_sid)
                              FOR NO KEY UPDATE OF v SKIP LOCKED
                              FOR KEY SHARE OF a SKIP LOCKED)
        RETURNING o.number_id, o.account_id, o.phone_number, o.twilio_sid)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, number_id, account_id, action)
    SELECT 'vanished_at_twilio', g.phone_number, g.twilio_sid, g.number_id, g.account_id,
           'marked released (no refund)'
    FROM gone g
    RETURNING *;

    -- configuration that differs, or a number of ours in another managed
    -- account than its row says (a transfer rolled back when a crash took
    -- the worker's memory of it): Twilio is put back in step with the row
    RETURN QUERY
    WITH differs AS MATERIALIZED (
        SELECT o.number_id, o.account_id, o.phone_number, o.twilio_sid,
               twilio_numbers._config_to_push(o.number_id, t.r) AS push,
               nullif(t.account_sid, coalesce(o.twilio_account_sid, p_main)) AS moved_to
        FROM twilio_numbers.owned_numbers o
        JOIN pg_temp.tn_reconcile_seen t ON t.sid = o.twilio_sid
        WHERE o.status IN ('active', 'past_due') AND t.r IS NOT NULL),
    -- those an application holds, or whose account it holds: the next pass
    free AS MATERIALIZED (
        SELECT d.*
        FROM differs d
        WHERE (d.push <> '{}' OR d.moved_to IS NOT NULL)
          AND d.number_id IN (SELECT v.number_id
                              FROM twilio_numbers.owned_numbers v
                              JOIN twilio_numbers.accounts a ON a.account_id = v.account_id
                              WHERE v.number_id IN (SELECT c.number_id FROM differs c
                                                    WHERE c.push <> '{}' OR c.moved_to IS NOT NULL)
                              FOR KEY SHARE OF v SKIP LOCKED
                              FOR KEY SHARE OF a SKIP LOCKED)),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, payload)
        SELECT 'resync', d.number_id, d.phone_number,
               jsonb_strip_nulls(jsonb_build_object('reason', 'reconcile', 'other_account_sid', d.moved_to))
        FROM free d
        WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                          WHERE q.number_id = d.number_id AND q.kind = 'resync' AND q.status = 'pending')
        RETURNING number_id)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, number_id, account_id, detail, action)
    SELECT 'config_drift', d.phone_number, d.twilio_sid, d.number_id, d.account_id,
           jsonb_strip_nulls(jsonb_build_object('to_push', nullif(d.push, '{}'), 'moved_to', d.moved_to)),
           'resync queued'
    FROM free d
    RETURNING *;

    PERFORM twilio_numbers._wake_worker_at_commit();
END $$;

-- List every managed account at Twilio and compare (C, then _reconcile);
-- the worker runs it at start-up and every reconcile_interval_s.
CREATE FUNCTION numbers_reconcile() RETURNS SETOF drift
AS 'MODULE_PATHNAME', 'tn_numbers_reconcile'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_reconcile IS
  'Compare owned_numbers with the managed Twilio accounts: release only what is provably ours, report the rest, mark vanished numbers, re-sync drift.';
