--------------------------------------------------------------------------
-- Proof of ownership: an attempt row, committed before the request, and
-- what is in flight right now (shared memory)
--------------------------------------------------------------------------

-- Every request that could create a number (or a hosted order) at Twilio,
-- recorded and committed by the attempt recorder before it is sent, and
-- closed when its outcome is settled.  Reconcile releases a number without
-- a live row only if an attempt of this epoch created it (or a row of ours
-- released it already); recorded_in tells a promoted standby or a restored
-- copy (another epoch) from the database that made the attempt.
CREATE TABLE purchase_attempts (
    attempt_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('purchase', 'hosted_order')),
    phone_number       text NOT NULL,
    twilio_account_sid text NOT NULL,
    recorded_in        text NOT NULL,
    backend_pid        integer,
    started_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    deadline           timestamptz NOT NULL,
    state              text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    outcome            text CHECK (outcome IN ('committed', 'refused', 'compensated', 'nothing_bought',
                                               'unproven')),
    twilio_sid         text,
    request_fields     text[],
    request_md5        text,
    closed_at          timestamptz,
    created_sids       text[] NOT NULL DEFAULT '{}',
    resources_made     integer GENERATED ALWAYS AS (cardinality(created_sids)) STORED,
    CHECK ((state = 'open') = (outcome IS NULL))
);
COMMENT ON TABLE purchase_attempts IS
  'Requests that could create a number or hosted order at Twilio, committed before they were sent: the proof reconcile needs to release anything.';
COMMENT ON COLUMN purchase_attempts.recorded_in IS
  'system identifier:timeline:database where it was recorded; another epoch (failover, restored copy) proves nothing.';
COMMENT ON COLUMN purchase_attempts.deadline IS 'No request of the attempt can land at Twilio after this.';
COMMENT ON COLUMN purchase_attempts.request_md5 IS
  'md5 of the configuration the request sent (request_fields, "field=value" lines): what it created is configured so.';
COMMENT ON COLUMN purchase_attempts.created_sids IS
  'What the attempt created at Twilio: the SID committed, or every resource its compensation removed (a request that landed late included).';
COMMENT ON COLUMN purchase_attempts.resources_made IS 'How many resources the attempt created at Twilio.';
CREATE INDEX purchase_attempts_open ON purchase_attempts (phone_number) WHERE state = 'open';
CREATE INDEX purchase_attempts_sid ON purchase_attempts (twilio_sid) WHERE twilio_sid IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('purchase_attempts', '');
SELECT pg_catalog.pg_extension_config_dump('purchase_attempts_attempt_id_seq', '');

-- The epoch attempts are recorded in now (system identifier, timeline,
-- database): reconcile tells this database's attempts from those of another.
CREATE FUNCTION _epoch() RETURNS text
AS 'MODULE_PATHNAME', 'tn_epoch_sql' LANGUAGE C VOLATILE;

-- In flight: is an attempt's transaction (or its settling) not over; does a
-- transaction in flight know this SID; is one buying this number right now?
CREATE FUNCTION _attempt_in_flight(attempt_id bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'tn_attempt_in_flight_sql' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION _sid_in_flight(sid text) RETURNS boolean
AS 'MODULE_PATHNAME', 'tn_sid_in_flight_sql' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION _purchase_in_flight(phone_number text) RETURNS boolean
AS 'MODULE_PATHNAME', 'tn_purchase_in_flight_sql' LANGUAGE C STRICT VOLATILE;

-- An attempt closed as committed or compensated made what its twilio_sid
-- names (whoever closes it: the recorder, a job, reconcile).
CREATE FUNCTION _attempt_closed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.state = 'closed' AND OLD.state = 'open' AND NEW.outcome IN ('committed', 'compensated')
       AND NEW.twilio_sid IS NOT NULL AND NOT NEW.twilio_sid = ANY (NEW.created_sids) THEN
        NEW.created_sids := NEW.created_sids || NEW.twilio_sid;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER purchase_attempts_closed BEFORE UPDATE ON purchase_attempts
    FOR EACH ROW EXECUTE FUNCTION _attempt_closed();

-- The attempt recorder opens an attempt before its request is sent (p_md5
-- '': no configuration fingerprint); returns its attempt_id.
CREATE FUNCTION _attempt_open(p_kind text, p_phone_number text, p_twilio_account_sid text, p_recorded_in text,
                              p_backend_pid integer, p_deadline timestamptz, p_request_fields text[], p_md5 text)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO twilio_numbers.purchase_attempts
        (kind, phone_number, twilio_account_sid, recorded_in, backend_pid, deadline, request_fields, request_md5)
    VALUES (p_kind, p_phone_number, p_twilio_account_sid, p_recorded_in, p_backend_pid, p_deadline,
            p_request_fields, nullif(p_md5, ''))
    RETURNING attempt_id;
END;

-- ... writes the SID Twilio answered into an open attempt (p_sid '': none),
-- and closes it with its outcome (NULL: it stays open).
CREATE FUNCTION _attempt_settle(p_attempt_id bigint, p_outcome text, p_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.purchase_attempts SET
        twilio_sid = coalesce(nullif(p_sid, ''), twilio_sid),
        state = CASE WHEN p_outcome IS NULL THEN state ELSE 'closed' END, outcome = p_outcome,
        closed_at = CASE WHEN p_outcome IS NULL THEN NULL ELSE now() END
    WHERE attempt_id = p_attempt_id AND state = 'open';
END;

-- An open attempt closed with its outcome by a job (p_sid: what it made,
-- NULL: the SID recorded stays).
CREATE FUNCTION _attempt_close(p_attempt_id bigint, p_outcome text, p_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.purchase_attempts SET state = 'closed', outcome = p_outcome,
        twilio_sid = coalesce(p_sid, twilio_sid), closed_at = now()
    WHERE attempt_id = p_attempt_id AND state = 'open';
END;

-- A job undoing a creation found what the attempt made (p_sid): added to
-- created_sids once.
CREATE FUNCTION _attempt_made(p_attempt_id bigint, p_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.purchase_attempts
    SET created_sids = array_append(created_sids, p_sid), twilio_sid = coalesce(twilio_sid, p_sid)
    WHERE attempt_id = p_attempt_id AND NOT p_sid = ANY (created_sids);
END;

-- What undoing an attempt's creation goes by: the attempt's account, times
-- and request; from the job's payload, how many of its POSTs got no reply
-- (unresolved) and whether it committed; how many resources it made so
-- far, and whether the job's SID (p_sid, '' when none) is among them.
CREATE FUNCTION _attempt_undo_facts(p_attempt_id bigint, p_payload jsonb, p_sid text)
RETURNS TABLE (twilio_account_sid text, started_at timestamptz, deadline timestamptz, request_fields text[],
               request_md5 text, unresolved integer, made integer, sid_done boolean, committed boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT a.twilio_account_sid, a.started_at, a.deadline, a.request_fields, a.request_md5,
           coalesce((p_payload->>'unresolved')::integer, 0), cardinality(a.created_sids),
           p_sid = ANY (a.created_sids), coalesce((p_payload->>'committed')::boolean, false)
    FROM twilio_numbers.purchase_attempts a WHERE a.attempt_id = p_attempt_id;
END;
