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
