--------------------------------------------------------------------------
-- The work queue: what must happen at Twilio after a commit, done by the
-- background worker
--------------------------------------------------------------------------

-- One job per release, compensation, re-sync or hosted-order poll or
-- cancellation; a job that fails queue_max_attempts times stays, dead.
CREATE TABLE work_queue (
    job_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind               text NOT NULL
                       CHECK (kind IN ('release', 'compensate', 'resync', 'hosted_poll', 'hosted_cancel', 'bundle_poll',
                                       'messaging_resync')),
    number_id          bigint REFERENCES owned_numbers,
    phone_number       text,
    twilio_sid         text,
    twilio_account_sid text,
    payload            jsonb NOT NULL DEFAULT '{}',
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    last_error         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    -- the attempt a compensation or a hosted-order cancellation settles
    attempt_id         bigint REFERENCES purchase_attempts
);
COMMENT ON TABLE work_queue IS
  'Durable work for the background worker: releases after commit, compensations, re-syncs. Dead letters stay.';
CREATE INDEX work_queue_due ON work_queue (next_attempt_at) WHERE status = 'pending';
-- the order the queue runners claim jobs in: urgent first (compensations,
-- releases, re-syncs, polls), oldest first within a kind (worker.c)
CREATE INDEX work_queue_claim ON work_queue
    ((CASE kind WHEN 'compensate' THEN 0 WHEN 'hosted_cancel' THEN 0 WHEN 'release' THEN 1
                WHEN 'resync' THEN 2 WHEN 'messaging_resync' THEN 2 ELSE 3 END), job_id)
    WHERE status = 'pending';
CREATE INDEX work_queue_number ON work_queue (number_id) WHERE status = 'pending';
-- is a job queued for this SID? (reconcile, the look-up after a lost reply)
CREATE INDEX work_queue_sid ON work_queue (twilio_sid) WHERE status = 'pending';
SELECT pg_catalog.pg_extension_config_dump('work_queue', '');
SELECT pg_catalog.pg_extension_config_dump('work_queue_job_id_seq', '');

-- Functions that change numbers need the worker (it settles what their
-- transactions leave at Twilio) and a transaction that can commit: they
-- refuse before any request when either is missing.  A transaction that
-- queued work wakes the worker when it commits.
CREATE FUNCTION _require_worker() RETURNS void
AS 'MODULE_PATHNAME', 'tn_require_worker_sql' LANGUAGE C;
CREATE FUNCTION _wake_worker_at_commit() RETURNS void
AS 'MODULE_PATHNAME', 'tn_wake_worker_at_commit_sql' LANGUAGE C;
