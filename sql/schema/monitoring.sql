--------------------------------------------------------------------------
-- Monitoring: the Twilio call log, the queue, what is in flight, the
-- worker, billing passes, numbers due and reconcile's findings
--------------------------------------------------------------------------

-- The Twilio call log: a ring in shared memory.
CREATE FUNCTION call_log_entries(
    OUT seq         bigint,
    OUT at          timestamptz,
    OUT pid         integer,
    OUT method      text,
    OUT host        text,
    OUT path        text,
    OUT status      integer,
    OUT twilio_code integer,
    OUT duration_ms double precision,
    OUT error       text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tn_call_log'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION call_log_entries IS
  'The Twilio call log ring: recent requests of every backend and of the worker.';

CREATE VIEW call_log AS
  SELECT seq, at, pid, method, host, path, status, twilio_code, duration_ms, error
  FROM call_log_entries();
COMMENT ON VIEW call_log IS
  'Recent HTTP requests to Twilio: method, path, HTTP status, Twilio error code, duration. Never credentials.';

-- The work queue: what is pending and what is dead.
CREATE VIEW queue AS
SELECT job_id, kind, status, phone_number, number_id, twilio_sid, attempts, next_attempt_at,
       last_error, created_at, updated_at, now() - created_at AS age
FROM work_queue
WHERE status IN ('pending', 'dead');
COMMENT ON VIEW queue IS 'Pending jobs of the background worker, and dead letters.';

-- A dead letter leaves the view once a later job did what it failed to do
-- (the same kind for the same SID, attempt or number: reconcile queued it
-- again, or a DBA did); the row stays in work_queue as history.
CREATE VIEW queue_dead_letters AS
SELECT d.job_id, d.kind, d.phone_number, d.number_id, d.twilio_sid, d.attempts, d.last_error, d.created_at,
       d.updated_at
FROM work_queue d
WHERE d.status = 'dead'
  AND NOT EXISTS (SELECT 1 FROM work_queue l
                  WHERE l.status = 'done' AND l.job_id > d.job_id AND l.kind = d.kind
                    AND (l.twilio_sid = d.twilio_sid OR l.attempt_id = d.attempt_id
                         OR (l.twilio_sid IS NULL AND d.twilio_sid IS NULL AND l.number_id = d.number_id)));
COMMENT ON VIEW queue_dead_letters IS
  'Jobs that failed queue_max_attempts times and that no later job has done since; they need a DBA.';

-- Purchases and changes in flight (shared memory).
CREATE FUNCTION inflight_entries(
    OUT kind text, OUT state text, OUT pid integer, OUT xid xid, OUT account_id bigint,
    OUT number_id bigint, OUT phone_number text, OUT twilio_sid text, OUT held numeric,
    OUT posted boolean, OUT started_at timestamptz, OUT attempt_id bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tn_inflight' LANGUAGE C VOLATILE;
CREATE VIEW inflight AS SELECT * FROM inflight_entries();
COMMENT ON VIEW inflight IS
  'Purchases and changes whose transactions are open or not yet settled by the worker, with the funds they hold.';

-- The cluster's budget of requests in flight to Twilio (shared memory).
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

-- The worker: what it reported (shared memory) and what pg_stat_activity shows.
CREATE FUNCTION worker_info(
    OUT pid integer, OUT database text, OUT started_at timestamptz, OUT starts bigint,
    OUT last_reconcile_at timestamptz, OUT last_reconcile_findings bigint,
    OUT last_billing_at timestamptz, OUT jobs_done bigint,
    OUT last_error text, OUT last_error_at timestamptz)
AS 'MODULE_PATHNAME', 'tn_worker_info' LANGUAGE C VOLATILE;
CREATE VIEW worker_status AS
SELECT w.pid, w.database, w.started_at, w.starts, a.state, a.query AS activity,
       a.query_start AS activity_since, a.wait_event_type, a.wait_event,
       w.last_reconcile_at, w.last_reconcile_findings, w.last_billing_at, w.jobs_done,
       w.last_error, w.last_error_at
FROM worker_info() w
LEFT JOIN pg_stat_activity a ON a.pid = w.pid AND a.backend_type = 'twilio_numbers worker';
COMMENT ON VIEW worker_status IS
  'The background worker: running since when, doing what, last reconcile, jobs done, last error.';

-- The queue runners (worker.c): what each is doing now.
CREATE VIEW queue_runners AS
SELECT a.pid, a.backend_start AS started_at, a.state, a.query AS activity, a.query_start AS activity_since,
       a.wait_event_type, a.wait_event
FROM pg_stat_activity a
WHERE a.backend_type = 'twilio_numbers queue runner';
COMMENT ON VIEW queue_runners IS
  'The background workers that run queued jobs: pid, what each is doing (job, number, attempt), its wait.';

CREATE VIEW billing_report AS
SELECT run_id, started_by, status, as_of, started_at, finished_at,
       coalesce(finished_at, clock_timestamp()) - started_at AS duration,
       batches_done || '/' || batches_total AS progress,
       numbers_charged, periods_charged, amount, past_due, reactivated, released, skipped, error
FROM billing_runs ORDER BY run_id DESC;
COMMENT ON VIEW billing_report IS 'Billing passes, newest first, with their progress while they run.';

-- Numbers due for billing soon (an index range scan).
CREATE VIEW numbers_due AS
SELECT o.number_id, o.account_id, o.phone_number, o.status, o.monthly_price, o.currency, o.next_billing_at,
       o.past_due_since
FROM owned_numbers o
WHERE o.status IN ('active', 'past_due');
COMMENT ON VIEW numbers_due IS
  'Numbers that will be billed; filter on next_billing_at (e.g. due next week) to use the billing index.';

CREATE VIEW drift_report AS
SELECT drift_id, found_at, finding, phone_number, twilio_sid, number_id, account_id, action, detail
FROM drift ORDER BY drift_id DESC;
COMMENT ON VIEW drift_report IS 'What reconcile found, newest first.';

-- Twilio's clock against ours (twclock.c): the latest measurement from a
-- reply's Date header, and whether a skew beyond clock_skew_warning_ms is on.
CREATE FUNCTION twilio_clock_info(
    OUT skew           interval,
    OUT skew_ms        double precision,
    OUT uncertainty_ms double precision,
    OUT measured_at    timestamptz,
    OUT measured_by    integer,
    OUT samples        bigint,
    OUT skewed         boolean,
    OUT skewed_since   timestamptz,
    OUT episodes       bigint)
AS 'MODULE_PATHNAME', 'tn_twilio_clock_info'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION twilio_clock_info IS
  'Twilio''s clock minus this server''s, as last measured from a reply''s Date header; skew episodes.';

CREATE VIEW twilio_clock AS
SELECT skew, skew_ms, uncertainty_ms, measured_at, measured_by, samples, skewed, skewed_since, episodes,
       current_setting('twilio_numbers.clock_skew_warning_ms', true) AS warning_threshold
FROM twilio_clock_info();
COMMENT ON VIEW twilio_clock IS
  'Twilio''s clock minus this server''s (skew > 0: Twilio ahead), measured from replies; skewed: beyond clock_skew_warning_ms.';
