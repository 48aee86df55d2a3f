--------------------------------------------------------------------------
-- Monthly billing: set-based, in batches of accounts
--------------------------------------------------------------------------

-- Every billing pass, by the worker or by hand, with its progress.
CREATE TABLE billing_runs (
    run_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of           timestamptz NOT NULL,
    started_by      text NOT NULL CHECK (started_by IN ('worker', 'manual')),
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz,
    batches_total   integer NOT NULL DEFAULT 0,
    batches_done    integer NOT NULL DEFAULT 0,
    numbers_charged bigint NOT NULL DEFAULT 0,
    periods_charged bigint NOT NULL DEFAULT 0,
    amount          numeric(16,2) NOT NULL DEFAULT 0,
    past_due        bigint NOT NULL DEFAULT 0,
    reactivated     bigint NOT NULL DEFAULT 0,
    released        bigint NOT NULL DEFAULT 0,
    skipped         bigint NOT NULL DEFAULT 0,   -- due numbers locked by someone else: next pass
    error           text
);
COMMENT ON TABLE billing_runs IS
  'Billing passes: when, as of when, progress (batches), numbers and periods charged, amount, past-due, releases.';
CREATE INDEX billing_runs_started ON billing_runs (started_at);
SELECT pg_catalog.pg_extension_config_dump('billing_runs', '');
SELECT pg_catalog.pg_extension_config_dump('billing_runs_run_id_seq', '');

-- Batches for a pass: ranges of account ids holding about batch_size due
-- numbers each (an account is never split).
CREATE FUNCTION _billing_batches(p_as_of timestamptz, p_batch_size integer)
RETURNS TABLE (lo bigint, hi bigint, numbers bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH per_account AS (
        SELECT o.account_id, count(*) AS n
        FROM twilio_numbers.owned_numbers o
        WHERE o.status IN ('active', 'past_due') AND o.next_billing_at <= p_as_of
        GROUP BY o.account_id),
    numbered AS (
        SELECT account_id, n, sum(n) OVER (ORDER BY account_id) AS cum FROM per_account)
    SELECT min(account_id), max(account_id), sum(n)::bigint
    FROM numbered
    GROUP BY div(cum - 1, greatest(p_batch_size, 1))
    ORDER BY 1;
END;

-- Bill one range of accounts as of p_as_of, in one statement:
--   * the range's due numbers are locked (SKIP LOCKED: one being released or
--     changed right now waits for the next pass rather than making anyone wait);
--   * every due period of every number (missed ones too, oldest first) is
--     charged while the account's balance + credit_limit covers it — a
--     running sum per account, so no charge goes beyond the limit;
--   * a number left with an unpaid period turns past_due (since the pass
--     that found the debt, so that a catch-up pass after an outage never
--     releases it in the same breath); one fully paid turns active again.
-- Accounts are not locked here: the ledger trigger locks them (in id order)
-- only at the end of the statement, so a concurrent purchase waits at most
-- for the commit, not for the batch.  If a purchase debited an account
-- between the read and the trigger, the trigger refuses (TN001) and
-- _bill_batch runs the range again with its accounts locked first.  The
-- accounts of p_skip (held by open transactions, _bill_batch found) are
-- left for the next pass, their numbers counted as skipped.
-- Exactly one charge per (number, period): the unique index on the ledger.
CREATE FUNCTION _bill_range(p_lo bigint, p_hi bigint, p_as_of timestamptz, p_skip bigint[],
    OUT numbers_charged bigint, OUT periods_charged bigint, OUT amount numeric,
    OUT past_due bigint, OUT reactivated bigint, OUT skipped bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    as_of_date date := (p_as_of AT TIME ZONE 'UTC')::date;
BEGIN
    WITH due AS MATERIALIZED (
        SELECT o.number_id, o.account_id, o.monthly_price, o.billing_anchor_day AS anchor, o.status,
               (o.next_billing_at AT TIME ZONE 'UTC')::date AS first_start
        FROM twilio_numbers.owned_numbers o
        WHERE o.account_id BETWEEN p_lo AND p_hi
          AND o.status IN ('active', 'past_due') AND o.next_billing_at <= p_as_of
          AND o.account_id <> ALL (p_skip)
          -- a closed account is never billed
          AND NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts c
                          WHERE c.account_id = o.account_id AND c.status = 'closed')
        FOR NO KEY UPDATE OF o SKIP LOCKED),
    acc AS MATERIALIZED (
        SELECT a.account_id, a.balance + a.credit_limit AS available
        FROM twilio_numbers.accounts a
        WHERE a.account_id IN (SELECT d.account_id FROM due d)),
    periods AS (
        SELECT d.number_id, d.account_id, d.monthly_price,
               twilio_numbers._period_start(d.first_start, d.anchor, k) AS ps,
               twilio_numbers._period_start(d.first_start, d.anchor, k + 1) AS pe
        FROM due d,
             generate_series(0, (extract(year FROM as_of_date)::integer - extract(year FROM d.first_start)::integer) * 12
                                + extract(month FROM as_of_date)::integer - extract(month FROM d.first_start)::integer) AS k),
    payable AS MATERIALIZED (
        SELECT p.number_id, p.account_id, p.monthly_price, p.ps, p.pe
        FROM (SELECT p.*, sum(p.monthly_price) OVER (PARTITION BY p.account_id ORDER BY p.ps, p.number_id
                                                    ROWS UNBOUNDED PRECEDING) AS running
              FROM periods p
              WHERE p.ps <= as_of_date) p
        JOIN acc USING (account_id)
        WHERE p.running <= acc.available),
    charged AS (
        INSERT INTO twilio_numbers.ledger (account_id, amount, kind, number_id, period_start, period_end, memo)
        SELECT y.account_id, -y.monthly_price, 'monthly_fee', y.number_id, y.ps, y.pe, 'monthly fee'
        FROM payable y
        WHERE y.monthly_price > 0
        ORDER BY y.account_id, y.ps, y.number_id
        ON CONFLICT (number_id, period_start) WHERE kind = 'monthly_fee' DO NOTHING
        RETURNING -ledger.amount AS amount),
    paid AS (
        SELECT y.number_id, max(y.ps) AS last_ps, max(y.pe) AS last_pe, count(*) AS periods
        FROM payable y GROUP BY y.number_id),
    updated AS (
        UPDATE twilio_numbers.owned_numbers o SET
            period_start = coalesce(x.last_ps, o.period_start),
            next_billing_at = x.next_at,
            status = CASE WHEN x.next_at > p_as_of THEN 'active' ELSE 'past_due' END,
            -- the debt counts from the pass that found it (so a catch-up pass after
            -- an outage never releases in the same breath), not from the period
            past_due_since = CASE WHEN x.next_at > p_as_of THEN NULL
                                  ELSE coalesce(o.past_due_since, p_as_of) END,
            updated_at = now()
        FROM (SELECT d.number_id, d.status AS old_status, pd.last_ps,
                     coalesce(pd.last_pe::timestamp AT TIME ZONE 'UTC',
                              d.first_start::timestamp AT TIME ZONE 'UTC') AS next_at
              FROM due d LEFT JOIN paid pd USING (number_id)) x
        WHERE o.number_id = x.number_id
        RETURNING x.old_status, o.status AS new_status)
    SELECT (SELECT count(*) FROM paid),
           (SELECT coalesce(sum(pd.periods), 0) FROM paid pd),
           (SELECT coalesce(sum(c.amount), 0) FROM charged c),
           (SELECT count(*) FROM updated u WHERE u.new_status = 'past_due' AND u.old_status = 'active'),
           (SELECT count(*) FROM updated u WHERE u.new_status = 'active' AND u.old_status = 'past_due'),
           (SELECT count(*) FROM twilio_numbers.owned_numbers o
            WHERE o.account_id BETWEEN p_lo AND p_hi
              AND o.status IN ('active', 'past_due') AND o.next_billing_at <= p_as_of
              AND NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts c
                              WHERE c.account_id = o.account_id AND c.status = 'closed'))
           - (SELECT count(*) FROM due)
    INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped;
END $$;

-- Bill one batch of accounts (one short transaction in the worker), then
-- release the past-due numbers whose grace_period is over, through the
-- queue and without a refund.  Over in real time too: a pass dated in the
-- future charges and marks past due as of its instant, but a release is
-- irreversible, so it waits until the grace period has really passed
-- (past_due_since + p_grace <= now()); p_grace is the grace_period setting,
-- passed by the caller.  With p_skip_busy (the worker's
-- passes) an account an open transaction holds (a purchase not yet
-- committed debited it) is never waited for: found with SKIP LOCKED in a
-- subtransaction that is rolled back (so nothing stays locked), it is left
-- for the next pass and its due numbers counted as skipped; one taken in the
-- instant between that look and the debit is waited for.  Without (a DBA's
-- numbers_run_billing) the batch waits for such an account at its debit.
CREATE FUNCTION _bill_batch(p_lo bigint, p_hi bigint, p_as_of timestamptz, p_skip_busy boolean DEFAULT false,
    p_grace interval DEFAULT current_setting('twilio_numbers.grace_period')::interval,
    OUT numbers_charged bigint, OUT periods_charged bigint, OUT amount numeric,
    OUT past_due bigint, OUT reactivated bigint, OUT released bigint, OUT skipped bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    busy bigint[] := '{}';
BEGIN
    IF p_skip_busy THEN
        BEGIN
            SELECT coalesce(array_agg(a.account_id), '{}') INTO busy
            FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi
              AND a.account_id NOT IN (SELECT f.account_id FROM twilio_numbers.accounts f
                                       WHERE f.account_id BETWEEN p_lo AND p_hi
                                       FOR NO KEY UPDATE SKIP LOCKED);
            RAISE SQLSTATE 'TN999';     -- give the probe's row locks back
        EXCEPTION WHEN SQLSTATE 'TN999' THEN
            NULL;
        END;
    END IF;
    BEGIN
        SELECT * INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped
        FROM twilio_numbers._bill_range(p_lo, p_hi, p_as_of, busy);
    EXCEPTION WHEN SQLSTATE 'TN001' THEN
        -- a purchase debited an account between our read and our debit:
        -- bill the range again with its accounts locked first (skipping
        -- busy ones: those an open transaction holds now wait for the next pass)
        IF p_skip_busy THEN
            SELECT busy || coalesce(array_agg(a.account_id), '{}') INTO busy
            FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi AND a.account_id <> ALL (busy)
              AND a.account_id NOT IN (SELECT f.account_id FROM twilio_numbers.accounts f
                                       WHERE f.account_id BETWEEN p_lo AND p_hi AND f.account_id <> ALL (busy)
                                       ORDER BY f.account_id
                                       FOR NO KEY UPDATE SKIP LOCKED);
        ELSE
            PERFORM 1 FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi
            ORDER BY a.account_id
            FOR NO KEY UPDATE;
        END IF;
        SELECT * INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped
        FROM twilio_numbers._bill_range(p_lo, p_hi, p_as_of, busy);
    END;

    WITH expired AS (
        SELECT o.number_id FROM twilio_numbers.owned_numbers o
        WHERE o.account_id BETWEEN p_lo AND p_hi AND o.status = 'past_due'
          AND o.past_due_since + p_grace <= least(p_as_of, now())
        FOR NO KEY UPDATE SKIP LOCKED),
    gone AS (
        UPDATE twilio_numbers.owned_numbers o SET status = 'releasing', released_at = now(), updated_at = now()
        FROM expired e WHERE o.number_id = e.number_id
        RETURNING o.number_id, o.phone_number, o.twilio_sid, o.twilio_account_sid),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload)
        SELECT 'release', g.number_id, g.phone_number, g.twilio_sid, g.twilio_account_sid,
               '{"reason": "grace period over"}'
        FROM gone g
        RETURNING 1)
    SELECT count(*) INTO released FROM queued;
    IF released > 0 THEN
        PERFORM twilio_numbers._wake_worker_at_commit();
    END IF;
END $$;

-- A billing run starts as of an instant, by the worker or by hand: its
-- batches planned (p_batch_size due numbers each, the billing_batch_size
-- setting) and its row written.  Returns the run and its batches' ranges.
CREATE FUNCTION _billing_run_start(p_as_of timestamptz, p_started_by text, p_batch_size integer,
    OUT run_id bigint, OUT los bigint[], OUT his bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT coalesce(array_agg(b.lo ORDER BY b.lo), '{}'), coalesce(array_agg(b.hi ORDER BY b.lo), '{}')
    INTO los, his
    FROM twilio_numbers._billing_batches(p_as_of, p_batch_size) b;
    INSERT INTO twilio_numbers.billing_runs (as_of, started_by, batches_total)
    VALUES (p_as_of, p_started_by, cardinality(los))
    RETURNING billing_runs.run_id INTO run_id;
END $$;

-- One batch of a billing run, counted into the run's row (the worker calls
-- it in a transaction of its own per batch; its runs skip accounts an open
-- transaction holds).  p_grace: the grace_period setting.
CREATE FUNCTION _billing_run_batch(p_run_id bigint, p_lo bigint, p_hi bigint, p_as_of timestamptz,
                                   p_grace interval)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs r SET
        batches_done = r.batches_done + 1,
        numbers_charged = r.numbers_charged + b.numbers_charged,
        periods_charged = r.periods_charged + b.periods_charged,
        amount = r.amount + b.amount, past_due = r.past_due + b.past_due,
        reactivated = r.reactivated + b.reactivated, released = r.released + b.released,
        skipped = r.skipped + b.skipped
    FROM twilio_numbers._bill_batch(p_lo, p_hi, p_as_of,
                                    (SELECT w.started_by = 'worker' FROM twilio_numbers.billing_runs w
                                     WHERE w.run_id = p_run_id), p_grace) b
    WHERE r.run_id = p_run_id;
END;

-- A billing run failed (the worker's: its batches so far are committed).
CREATE FUNCTION _billing_run_failed(p_run_id bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs SET status = 'failed', finished_at = clock_timestamp(), error = p_error
    WHERE run_id = p_run_id;
END;

-- The worker's runs a killed worker left 'running' are over: say so.
CREATE FUNCTION _billing_runs_interrupted() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs SET status = 'interrupted',
        finished_at = clock_timestamp(), error = 'the worker stopped during the run'
    WHERE status = 'running' AND started_by = 'worker';
END;

-- A billing run is finished: its row says so and twilio_numbers_billing hears it.
CREATE FUNCTION _billing_run_finish(p_run_id bigint) RETURNS billing_runs
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run twilio_numbers.billing_runs;
BEGIN
    UPDATE twilio_numbers.billing_runs SET status = 'finished', finished_at = clock_timestamp()
    WHERE run_id = p_run_id
    RETURNING * INTO run;
    PERFORM pg_notify('twilio_numbers_billing',
                      json_build_object('run_id', run.run_id, 'as_of', run.as_of,
                                        'numbers_charged', run.numbers_charged, 'amount', run.amount,
                                        'past_due', run.past_due, 'released', run.released)::text);
    RETURN run;
END $$;

-- One billing pass as of an instant, in the caller's transaction (the
-- worker runs the same batches, each in its own transaction).  Returns the
-- run: what it charged, how many turned past due, were reactivated or
-- released.  Billing months ahead is how tests see the future: such a pass
-- charges and marks past due as of its instant, but releases at Twilio only
-- what is past its grace period in real time as well.
CREATE FUNCTION numbers_run_billing(as_of timestamptz DEFAULT now()) RETURNS billing_runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run_id bigint;
    los bigint[];
    his bigint[];
    grace interval := current_setting('twilio_numbers.grace_period')::interval;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite instant, not %', coalesce(as_of::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT s.run_id, s.los, s.his INTO run_id, los, his
    FROM twilio_numbers._billing_run_start(numbers_run_billing.as_of, 'manual',
                                           current_setting('twilio_numbers.billing_batch_size')::integer) s;
    FOR i IN 1 .. cardinality(los) LOOP
        PERFORM twilio_numbers._billing_run_batch(run_id, los[i], his[i], numbers_run_billing.as_of, grace);
    END LOOP;
    RETURN twilio_numbers._billing_run_finish(run_id);
END $$;
COMMENT ON FUNCTION numbers_run_billing IS
  'One billing pass as of an instant (default now): charges every due period, past-due, reactivation, grace releases.';
