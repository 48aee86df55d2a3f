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
