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

-- How urgent a job of this kind is (0 first): compensations of rolled-back
-- purchases and hosted orders, then releases, then re-syncs, then polls.
-- The one definition of the order the queue runners claim jobs in: the
-- work_queue_claim index and _queue_claim both use it (an IMMUTABLE SQL
-- function is inlined, so the claim's ORDER BY matches the index).
CREATE FUNCTION _job_urgency(kind text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE kind WHEN 'compensate' THEN 0 WHEN 'hosted_cancel' THEN 0 WHEN 'release' THEN 1
                 WHEN 'resync' THEN 2 WHEN 'messaging_resync' THEN 2 ELSE 3 END
$$;
-- the order the queue runners claim jobs in: urgent first, oldest first
-- within a kind (_queue_claim)
CREATE INDEX work_queue_claim ON work_queue (_job_urgency(kind), job_id) WHERE status = 'pending';
CREATE INDEX work_queue_number ON work_queue (number_id) WHERE status = 'pending';
-- is a job queued for this SID? (reconcile, the look-up after a lost reply)
CREATE INDEX work_queue_sid ON work_queue (twilio_sid) WHERE status = 'pending';
SELECT pg_catalog.pg_extension_config_dump('work_queue', '');
SELECT pg_catalog.pg_extension_config_dump('work_queue_job_id_seq', '');

-- The queue's rules: what the queue runners (worker.c) and the backends
-- call, each with the settings it needs as arguments.

-- May a job of this kind run now?  While writes are paused
-- (twilio_numbers.pause_writes), only the undoing of rolled-back purchases
-- and hosted orders (each hour a number stays costs money, and its look-up
-- must happen while the attempt's time allows) and the hosted-order polls
-- (GETs).
CREATE FUNCTION _job_runnable(kind text, writes_paused boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT NOT writes_paused OR kind IN ('compensate', 'hosted_cancel', 'hosted_poll')
$$;

-- Queue a job, in the caller's transaction.
CREATE FUNCTION _queue_enqueue(p_kind text, p_number_id bigint, p_phone_number text, p_twilio_sid text,
                               p_twilio_account_sid text, p_payload jsonb, p_attempt_id bigint)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO twilio_numbers.work_queue
        (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    VALUES (p_kind, p_number_id, p_phone_number, p_twilio_sid, p_twilio_account_sid, p_payload, p_attempt_id);
END;

-- In how many ms the next runnable job is due (<= 0: now; NULL: none).
CREATE FUNCTION _queue_next_due_ms(p_writes_paused boolean) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT ceil(extract(epoch FROM min(q.next_attempt_at) - clock_timestamp()) * 1000)::bigint
    FROM twilio_numbers.work_queue q
    WHERE q.status = 'pending' AND twilio_numbers._job_runnable(q.kind, p_writes_paused);
END;

-- Claim the next due job, in the caller's (the job's) transaction: urgent
-- first, oldest first within a kind (the work_queue_claim index), FOR
-- UPDATE SKIP LOCKED; then the job's number, a transaction-level advisory
-- lock (class 1953393005, "a runner works on this number", keyed by the
-- hash of the number), so two runners never work on one number at once.
-- A job whose number another runner works on stays locked by us, skipped,
-- until the transaction ends (it could not run anyway), and the next one is
-- tried, p_tries at most.  The number's lock is taken only once the row is
-- ours: taken in the claim's WHERE it would be taken for every row the plan
-- reads, and hold every number.  No row: no job to run now.
CREATE FUNCTION _queue_claim(p_writes_paused boolean, p_tries integer) RETURNS SETOF work_queue
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j twilio_numbers.work_queue;
    skipped bigint[] := '{}';
BEGIN
    FOR i IN 1 .. p_tries LOOP
        SELECT * INTO j FROM twilio_numbers.work_queue q
        WHERE q.status = 'pending' AND q.next_attempt_at <= now() AND q.job_id <> ALL (skipped)
          AND twilio_numbers._job_runnable(q.kind, p_writes_paused)
        ORDER BY twilio_numbers._job_urgency(q.kind), q.job_id
        LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF pg_try_advisory_xact_lock(1953393005, hashtext(coalesce(j.phone_number, j.twilio_sid, j.job_id::text))) THEN
            RETURN NEXT j;
            RETURN;
        END IF;
        skipped := skipped || j.job_id;
    END LOOP;
END $$;

-- A job is done (p_note: what it says about it, or NULL).
CREATE FUNCTION _queue_done(p_job_id bigint, p_note text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.work_queue
    SET attempts = attempts + 1, last_error = p_note, updated_at = now(), status = 'done', finished_at = now()
    WHERE job_id = p_job_id;
END;

-- A job failed: retried with backoff, or a dead letter.  Its wait is
-- p_base_ms * 2^attempts, capped at p_max_ms, jittered to 50-100 %; after
-- p_max_attempts counted failures it is a dead letter, announced on
-- twilio_numbers_dead_letter.  A failure that was an outage (p_outage:
-- Twilio unreachable, 5xx, our credentials refused) is not the job's: it is
-- not counted, and the wait doubles from the last one, within p_base_ms and
-- p_max_ms.  True when the job has just become a dead letter.
CREATE FUNCTION _queue_failed(p_job_id bigint, p_error text, p_outage boolean,
                              p_base_ms double precision, p_max_ms double precision, p_max_attempts integer)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
BEGIN
    UPDATE twilio_numbers.work_queue SET
        attempts = CASE WHEN p_outage THEN attempts ELSE attempts + 1 END,
        last_error = CASE WHEN p_outage THEN 'not counted (Twilio outage): ' || p_error ELSE p_error END,
        updated_at = now(),
        status = CASE WHEN NOT p_outage AND attempts + 1 >= p_max_attempts THEN 'dead' ELSE 'pending' END,
        finished_at = NULL,
        next_attempt_at = CASE
            WHEN p_outage THEN now() + make_interval(secs => least(p_max_ms, greatest(p_base_ms,
                2 * 1000 * extract(epoch FROM next_attempt_at - updated_at))) * (0.75 + 0.25 * random()) / 1000.0)
            ELSE now() + make_interval(secs => least(p_base_ms * power(2, least(attempts, 20)), p_max_ms)
                                               * (0.5 + 0.5 * random()) / 1000.0) END
    WHERE job_id = p_job_id
    RETURNING job_id, status, kind, phone_number INTO j;
    IF NOT FOUND OR j.status <> 'dead' THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('twilio_numbers_dead_letter',
                      json_build_object('job_id', j.job_id, 'kind', j.kind, 'phone_number', j.phone_number)::text);
    RETURN true;
END $$;

-- A poll that is not finished: run it again after p_again_ms, no failure.
CREATE FUNCTION _queue_again(p_job_id bigint, p_again_ms double precision) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.work_queue SET attempts = 0, last_error = NULL, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => p_again_ms / 1000.0)
    WHERE job_id = p_job_id;
END;

-- Dead letters back in the queue (after a DBA fixed their cause): one
-- (p_job_id), or all of them (NULL) — those no later job has done since
-- (queue_dead_letters).  Tried at once, attempts counted from zero; returns
-- how many.
CREATE FUNCTION _queue_retry_dead(p_job_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE twilio_numbers.work_queue q
    SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now(),
        last_error = 'retried by a DBA after: ' || coalesce(q.last_error, 'no error recorded')
    WHERE (p_job_id IS NULL OR q.job_id = p_job_id)
      AND q.job_id IN (SELECT d.job_id FROM twilio_numbers.queue_dead_letters d);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN n;
END $$;

-- The job only watches now (what is known is undone; a request without a
-- reply may still land until p_until): its row says so, so that whoever
-- waits for the queue to drain of work does not wait for the deadline.
CREATE FUNCTION _queue_watching(p_job_id bigint, p_until timestamptz) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.work_queue
    SET payload = coalesce(payload, '{}') || jsonb_build_object('watching_until', p_until)
    WHERE job_id = p_job_id AND NOT coalesce(payload ? 'watching_until', false);
END;

-- The facts the jobs go by: does a live row own this Twilio SID; was the
-- hosted order with this SID recorded by a committed transaction; is there a
-- row (released or not) for this number_id?
CREATE FUNCTION _live_row_owns(p_sid text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM twilio_numbers.live_numbers l WHERE l.twilio_sid = p_sid);
END;
-- (plpgsql: hosted_orders is created after the queue, in hosted.sql)
CREATE FUNCTION _hosted_order_committed(p_sid text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM twilio_numbers.hosted_orders h WHERE h.order_sid = p_sid);
END $$;
CREATE FUNCTION _number_exists(p_number_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id);
END;

-- A release job is done at Twilio: the number (releasing) is released.
CREATE FUNCTION _number_released(p_number_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers SET status = 'released', updated_at = now()
    WHERE number_id = p_number_id AND status = 'releasing';
END;

-- A re-sync job reads its number's row, locked until the job's transaction
-- ends (nothing when the row is gone).
CREATE FUNCTION _number_for_resync(p_number_id bigint)
RETURNS TABLE (twilio_sid text, twilio_account_sid text, status text, address_sid text, bundle_sid text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT o.twilio_sid, o.twilio_account_sid, o.status, o.address_sid, o.bundle_sid
    FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id
    FOR UPDATE;
END;

-- ... and remembers Twilio's view of it (r: the resource) once it matches.
CREATE FUNCTION _number_twilio_seen(p_number_id bigint, r jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers SET twilio = r WHERE number_id = p_number_id;
END;

-- Functions that change numbers need the worker (it settles what their
-- transactions leave at Twilio) and a transaction that can commit: they
-- refuse before any request when either is missing.  A transaction that
-- queued work wakes the worker when it commits.
CREATE FUNCTION _require_worker() RETURNS void
AS 'MODULE_PATHNAME', 'tn_require_worker_sql' LANGUAGE C;
CREATE FUNCTION _wake_worker_at_commit() RETURNS void
AS 'MODULE_PATHNAME', 'tn_wake_worker_at_commit_sql' LANGUAGE C;
