-- twilio_numbers 0.3 -> 0.4 (ALTER EXTENSION twilio_numbers UPDATE TO '0.4')
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION twilio_numbers UPDATE TO '0.4'" to load this file. \quit

--------------------------------------------------------------------------
-- integrity: the view of every broken invariant
--------------------------------------------------------------------------
-- What tests, the soak and operators check after anything happened: an
-- account whose balance is not the sum of its ledger, a balance beyond its
-- credit limit, a (number, period) charged twice, a live number without a
-- period.  Set-based, read-only; cheap enough to run after every test and
-- from monitoring (it reads every account and every ledger entry once).
CREATE VIEW integrity AS
SELECT 'balance_not_ledger_sum'::text AS violation, a.account_id, NULL::bigint AS number_id,
       format('balance %s, ledger sum %s', a.balance, coalesce(l.total, 0)) AS detail
FROM accounts a
LEFT JOIN (SELECT e.account_id, sum(e.amount) AS total FROM ledger e GROUP BY e.account_id) l
       USING (account_id)
WHERE a.balance IS DISTINCT FROM coalesce(l.total, 0)
UNION ALL
SELECT 'balance_below_credit_limit', a.account_id, NULL,
       format('balance %s, credit limit %s', a.balance, a.credit_limit)
FROM accounts a
WHERE a.balance < -a.credit_limit
UNION ALL
SELECT 'period_charged_twice', min(e.account_id), e.number_id,
       format('period from %s charged %s times', e.period_start, count(*))
FROM ledger e
WHERE e.kind = 'monthly_fee' AND e.number_id IS NOT NULL
GROUP BY e.number_id, e.period_start
HAVING count(*) > 1
UNION ALL
SELECT 'live_number_without_period', o.account_id, o.number_id,
       format('%s %s: period from %s, next billing at %s', o.phone_number, o.status,
              o.period_start, o.next_billing_at)
FROM owned_numbers o
WHERE o.status IN ('active', 'past_due')
  AND (o.next_billing_at IS NULL OR o.next_billing_at <= o.period_start::timestamp AT TIME ZONE 'UTC');
COMMENT ON VIEW integrity IS
  'Every broken invariant (balance = sum of the ledger, balance within its credit limit, one charge per number and period, a period for every live number), one row each: empty when all is well.';

--------------------------------------------------------------------------
-- Scale (issue 21): the cluster's request budget, seen from SQL
--------------------------------------------------------------------------
CREATE FUNCTION request_budget_info(
    OUT max_concurrent_requests integer, OUT effective integer, OUT in_flight integer, OUT waiting integer,
    OUT peak_in_flight integer, OUT requests bigint, OUT waits bigint, OUT throttled bigint,
    OUT last_throttled_at timestamptz)
AS 'MODULE_PATHNAME', 'tn_request_budget' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION request_budget_info IS
  'The cluster''s budget of requests in flight to Twilio: the setting, the adaptive limit in force, slots taken and waited for.';
CREATE VIEW request_budget AS SELECT * FROM request_budget_info();
COMMENT ON VIEW request_budget IS
  'Requests in flight to Twilio across the cluster against max_concurrent_requests, the limit a 429 lowered it to, waits and 429s.';
REVOKE ALL ON FUNCTION request_budget_info() FROM PUBLIC;

CREATE OR REPLACE FUNCTION grant_reporting(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA twilio_numbers TO %s', role);
    -- the views over shared memory call these read-only functions
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.call_log_entries, '
        'twilio_numbers.inflight_entries, twilio_numbers.worker_info, twilio_numbers.request_budget_info, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund, '
        'twilio_numbers._capabilities TO %s', role);
END $$;

-- the order the queue runners claim jobs in: urgent first (compensations,
-- releases, re-syncs, polls), oldest first within a kind (worker.c)
CREATE INDEX work_queue_claim ON work_queue
    ((CASE kind WHEN 'compensate' THEN 0 WHEN 'hosted_cancel' THEN 0 WHEN 'release' THEN 1
                WHEN 'resync' THEN 2 ELSE 3 END), job_id)
    WHERE status = 'pending';

-- The queue runners (worker.c): what each is doing now.
CREATE VIEW queue_runners AS
SELECT a.pid, a.backend_start AS started_at, a.state, a.query AS activity, a.query_start AS activity_since,
       a.wait_event_type, a.wait_event
FROM pg_stat_activity a
WHERE a.backend_type = 'twilio_numbers queue runner';
COMMENT ON VIEW queue_runners IS
  'The background workers that run queued jobs: pid, what each is doing (job, number, attempt), its wait.';

-- The worker's billing never waits on an application: an account an open
-- transaction holds is left for the next pass (_bill_range takes the
-- accounts to skip, _bill_batch finds them when its run is the worker's)
DROP FUNCTION _billing_run_batch(bigint, bigint, bigint, timestamptz);
DROP FUNCTION _bill_batch(bigint, bigint, timestamptz);
DROP FUNCTION _bill_range(bigint, bigint, timestamptz);
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
              AND o.status IN ('active', 'past_due') AND o.next_billing_at <= p_as_of)
           - (SELECT count(*) FROM due)
    INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped;
END $$;

-- Bill one batch of accounts (one short transaction in the worker), then
-- release the past-due numbers whose grace_period is over, through the
-- queue and without a refund.  With p_skip_busy (the worker's passes) an
-- account an open transaction holds (a purchase not yet committed debited
-- it) is never waited for: found with SKIP LOCKED in a subtransaction that
-- is rolled back (so nothing stays locked), it is left for the next pass and
-- its due numbers counted as skipped; one taken in the instant between that
-- look and the debit is waited for.  Without (a DBA's numbers_run_billing)
-- the batch waits for such an account at its debit.
CREATE FUNCTION _bill_batch(p_lo bigint, p_hi bigint, p_as_of timestamptz, p_skip_busy boolean DEFAULT false,
    OUT numbers_charged bigint, OUT periods_charged bigint, OUT amount numeric,
    OUT past_due bigint, OUT reactivated bigint, OUT released bigint, OUT skipped bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grace interval := current_setting('twilio_numbers.grace_period')::interval;
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
          AND o.past_due_since + grace <= p_as_of
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

-- One batch of a billing run, counted into the run's row (the worker calls
-- it in a transaction of its own per batch; its runs skip accounts an open
-- transaction holds).
CREATE FUNCTION _billing_run_batch(p_run_id bigint, p_lo bigint, p_hi bigint, p_as_of timestamptz)
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
                                     WHERE w.run_id = p_run_id)) b
    WHERE r.run_id = p_run_id;
END;

REVOKE ALL ON FUNCTION _bill_range(bigint, bigint, timestamptz, bigint[]),
    _bill_batch(bigint, bigint, timestamptz, boolean), _billing_run_batch(bigint, bigint, bigint, timestamptz)
    FROM PUBLIC;
