--------------------------------------------------------------------------
-- Messaging Services and emergency addresses: a number in a service's
-- sender pool (C, messaging.c), the numbers of a service, reconcile's
-- comparison, and the reports of numbers that SMS or 911 would fail
--------------------------------------------------------------------------

-- Add a number to a Messaging Service, take it out (C): in the caller's
-- transaction, undone at Twilio if it rolls back, as trunk assignment.
CREATE FUNCTION numbers_messaging_assign(account_id bigint, phone_number text, service_sid text)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_messaging_assign'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_messaging_assign IS
  'Add a number to a Messaging Service''s sender pool (Messaging v1 PhoneNumbers) in the caller''s transaction.';

CREATE FUNCTION numbers_messaging_unassign(account_id bigint, phone_number text)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_messaging_unassign'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_messaging_unassign IS 'Take a number out of its Messaging Service.';

-- The live numbers in a Messaging Service.
CREATE FUNCTION numbers_messaging_numbers(service_sid text)
RETURNS SETOF owned_numbers
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF service_sid IS NULL OR service_sid !~ '^MG[0-9a-fA-F]{32}$' THEN
        RAISE EXCEPTION 'service_sid must be a Twilio SID: "MG" and 32 hex digits, not "%"',
            coalesce(service_sid, 'NULL') USING ERRCODE = '22023';
    END IF;
    RETURN QUERY SELECT * FROM twilio_numbers.live_numbers o
                 WHERE o.messaging_service_sid = numbers_messaging_numbers.service_sid
                 ORDER BY o.phone_number;
END $$;
COMMENT ON FUNCTION numbers_messaging_numbers IS 'The live numbers in a Messaging Service''s sender pool.';

-- How many live numbers a Messaging Service holds (Twilio allows 400).
CREATE FUNCTION _messaging_pool_size(p_service_sid text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*) FROM twilio_numbers.live_numbers o WHERE o.messaging_service_sid = p_service_sid
$$;

-- Write a number's Messaging Service into its row (Twilio's side is done).
CREATE FUNCTION _messaging_set_service(p_number_id bigint, p_service_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE twilio_numbers.owned_numbers o SET messaging_service_sid = p_service_sid, updated_at = now()
    WHERE o.number_id = p_number_id
$$;

-- A number's row, as an assignment returns it.
CREATE FUNCTION _messaging_number(p_number_id bigint) RETURNS SETOF owned_numbers
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id
$$;

-- A number's SID, status and Messaging Service, its row locked, for a
-- messaging_resync job; no row when the number is gone.
CREATE FUNCTION _messaging_resync_number(p_number_id bigint)
RETURNS TABLE (twilio_sid text, status text, messaging_service_sid text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.twilio_sid, o.status, o.messaging_service_sid FROM twilio_numbers.owned_numbers o
    WHERE o.number_id = p_number_id
    FOR UPDATE
$$;

-- Was any number ever put in a Messaging Service?  Reconcile lists no
-- service before one was (a database that does not use them sends no
-- request for them).
CREATE FUNCTION _messaging_in_use() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.messaging_service_sid IS NOT NULL)
$$;

-- Reconcile's work table of the senders Twilio lists (sid, service_sid):
-- created for the transaction, or emptied.
CREATE FUNCTION _messaging_seen_reset() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS tn_messaging_seen (sid text PRIMARY KEY, service_sid text) ON COMMIT DROP;
    TRUNCATE pg_temp.tn_messaging_seen;
END $$;

-- One page of a Messaging Service's sender pool as Twilio lists it, into
-- reconcile's work table.
CREATE FUNCTION _messaging_seen_add(p_page jsonb, p_service_sid text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pg_temp.tn_messaging_seen (sid, service_sid)
    SELECT e->>'sid', p_service_sid FROM jsonb_array_elements(p_page->'phone_numbers') e
    WHERE e->>'sid' IS NOT NULL
    ON CONFLICT (sid) DO NOTHING;
END $$;

-- Compare the live rows of the main account (p_main) with the senders
-- Twilio listed (pg_temp.tn_messaging_seen: sid, service_sid); queue a
-- re-sync for each number whose service differs and record it.
CREATE FUNCTION _reconcile_messaging(p_main text) RETURNS SETOF drift
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    WITH differs AS MATERIALIZED (
        SELECT o.number_id, o.account_id, o.phone_number, o.twilio_sid,
               o.messaging_service_sid AS ours, t.service_sid AS at_twilio
        FROM twilio_numbers.owned_numbers o
        LEFT JOIN pg_temp.tn_messaging_seen t ON t.sid = o.twilio_sid
        WHERE o.status IN ('active', 'past_due') AND o.twilio_sid IS NOT NULL
          AND coalesce(o.twilio_account_sid, p_main) = p_main
          AND o.messaging_service_sid IS DISTINCT FROM t.service_sid
        -- a row an application holds (FOR UPDATE) is left for the next pass:
        -- the job's reference to it would wait for that transaction
        FOR KEY SHARE OF o SKIP LOCKED),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, payload)
        SELECT 'messaging_resync', d.number_id, d.phone_number,
               jsonb_strip_nulls(jsonb_build_object('reason', 'reconcile', 'other_service_sid', d.at_twilio))
        FROM differs d
        WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                          WHERE q.number_id = d.number_id AND q.kind = 'messaging_resync' AND q.status = 'pending')
        RETURNING number_id)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, number_id, account_id, detail, action)
    SELECT 'config_drift', d.phone_number, d.twilio_sid, d.number_id, d.account_id,
           jsonb_build_object('messaging_service_sid', d.ours, 'at_twilio', d.at_twilio), 'resync queued'
    FROM differs d
    RETURNING *;

    PERFORM twilio_numbers._wake_worker_at_commit();
END $$;

-- Twilio registers an emergency address on its own time (pending-registration,
-- then registered or registration-failure): reconcile's listing
-- (pg_temp.tn_reconcile_seen) brings each live row's emergency status up to
-- date where Twilio holds the row's own address.  Rows locked by a
-- transaction now are left for the next pass.  Returns how many changed.
CREATE FUNCTION _reconcile_emergency() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH seen AS (
        SELECT o.number_id, nullif(t.r->>'emergency_status', '') AS emergency_status,
               nullif(t.r->>'emergency_address_status', '') AS emergency_address_status
        FROM twilio_numbers.owned_numbers o
        JOIN pg_temp.tn_reconcile_seen t ON t.sid = o.twilio_sid
        WHERE o.status IN ('active', 'past_due') AND t.r IS NOT NULL
          AND coalesce(o.emergency_address_sid, '') = coalesce(t.r->>'emergency_address_sid', '')
          AND (o.emergency_address_status IS DISTINCT FROM nullif(t.r->>'emergency_address_status', '')
               OR o.emergency_status IS DISTINCT FROM nullif(t.r->>'emergency_status', ''))
        FOR UPDATE OF o SKIP LOCKED)
    UPDATE twilio_numbers.owned_numbers o
    SET emergency_status = s.emergency_status, emergency_address_status = s.emergency_address_status,
        updated_at = now()
    FROM seen s WHERE o.number_id = s.number_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- SMS-capable US local numbers in no Messaging Service: their SMS to US
-- carriers goes undelivered (A2P 10DLC needs a registered service; 30034).
CREATE VIEW sms_numbers_without_service AS
SELECT o.account_id, a.name AS account_name, o.phone_number, o.twilio_sid, o.friendly_name, o.purchased_at
FROM owned_numbers o
JOIN accounts a USING (account_id)
WHERE o.status IN ('active', 'past_due') AND o.iso_country = 'US' AND o.number_type = 'local'
  AND 'sms' = ANY (o.capabilities) AND o.messaging_service_sid IS NULL;
COMMENT ON VIEW sms_numbers_without_service IS
  'SMS-capable US local numbers in no Messaging Service: their SMS will not reach US carriers (A2P 10DLC).';

-- US and Canadian voice numbers without a registered emergency address:
-- a 911 call from one is routed through a national call center, at a fee.
CREATE VIEW voice_numbers_without_emergency_address AS
SELECT o.account_id, a.name AS account_name, o.phone_number, o.twilio_sid, o.iso_country, o.number_type,
       o.emergency_address_sid, coalesce(o.emergency_address_status, 'unregistered') AS emergency_address_status
FROM owned_numbers o
JOIN accounts a USING (account_id)
WHERE o.status IN ('active', 'past_due') AND o.iso_country IN ('US', 'CA')
  AND 'voice' = ANY (o.capabilities)
  AND (o.emergency_address_sid IS NULL OR coalesce(o.emergency_address_status, 'unregistered') <> 'registered');
COMMENT ON VIEW voice_numbers_without_emergency_address IS
  'US and Canadian voice numbers without a registered emergency address (911 calls cost a fee and lose the location).';
