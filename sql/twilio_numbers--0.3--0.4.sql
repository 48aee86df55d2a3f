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

-- messaging (issue 22): Messaging Services and emergency addresses — a
-- number's service and emergency_address_status on owned_numbers, the
-- messaging_resync job, numbers_messaging_*, reconcile's comparison and
-- the two reports (sql/schema/messaging.sql), grant_application
--------------------------------------------------------------------------
ALTER TABLE owned_numbers
    ADD COLUMN messaging_service_sid text CHECK (messaging_service_sid ~ '^MG[0-9a-fA-F]{32}$'),
    ADD COLUMN emergency_address_status text;
COMMENT ON COLUMN owned_numbers.messaging_service_sid IS
  'The Messaging Service (MG...) whose sender pool holds the number (numbers_messaging_assign).';
COMMENT ON COLUMN owned_numbers.emergency_address_status IS
  'Twilio''s emergency_address_status: registered, unregistered, pending-registration, registration-failure, ...';
-- what Twilio last said about each number
UPDATE owned_numbers SET emergency_address_status = nullif(twilio->>'emergency_address_status', '')
WHERE twilio IS NOT NULL;

-- Copy Twilio's view of a number (an IncomingPhoneNumber) into its row.
CREATE OR REPLACE FUNCTION _apply_twilio(p_number_id bigint, r jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers SET
        twilio_sid = coalesce(r->>'sid', twilio_sid),
        twilio_account_sid = coalesce(r->>'account_sid', twilio_account_sid),
        friendly_name = r->>'friendly_name',
        voice_url = nullif(r->>'voice_url', ''),
        voice_method = nullif(r->>'voice_method', ''),
        sms_url = nullif(r->>'sms_url', ''),
        sms_method = nullif(r->>'sms_method', ''),
        status_callback = nullif(r->>'status_callback', ''),
        trunk_sid = nullif(r->>'trunk_sid', ''),
        address_sid = nullif(r->>'address_sid', ''),
        bundle_sid = nullif(r->>'bundle_sid', ''),
        identity_sid = nullif(r->>'identity_sid', ''),
        emergency_address_sid = nullif(r->>'emergency_address_sid', ''),
        emergency_status = nullif(r->>'emergency_status', ''),
        emergency_address_status = nullif(r->>'emergency_address_status', ''),
        capabilities = CASE WHEN jsonb_typeof(r->'capabilities') = 'object'
                            THEN twilio_numbers._capabilities(r->'capabilities') ELSE capabilities END,
        address_requirements = coalesce(r->>'address_requirements', address_requirements),
        beta = coalesce((r->>'beta')::boolean, beta),
        twilio = r,
        updated_at = now()
    WHERE number_id = p_number_id;
END;

-- its SELECT * was expanded when it was created: again, with the new columns
CREATE OR REPLACE FUNCTION numbers_trunk_numbers(trunk_sid text)
RETURNS SETOF owned_numbers
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM twilio_numbers.owned_numbers o
    WHERE o.trunk_sid = numbers_trunk_numbers.trunk_sid AND o.status <> 'released'
    ORDER BY o.phone_number;
END;

ALTER TABLE work_queue DROP CONSTRAINT work_queue_kind_check;
ALTER TABLE work_queue ADD CONSTRAINT work_queue_kind_check
    CHECK (kind IN ('release', 'compensate', 'resync', 'hosted_poll', 'hosted_cancel',
                                        'messaging_resync'));

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
    RETURN QUERY SELECT * FROM twilio_numbers.owned_numbers o
                 WHERE o.messaging_service_sid = numbers_messaging_numbers.service_sid AND o.status <> 'released'
                 ORDER BY o.phone_number;
END $$;
COMMENT ON FUNCTION numbers_messaging_numbers IS 'The live numbers in a Messaging Service''s sender pool.';

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
          AND o.messaging_service_sid IS DISTINCT FROM t.service_sid),
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

-- An application role calls the functions, creates and edits accounts and
-- reads the tables; it writes no money or number table directly.
CREATE OR REPLACE FUNCTION grant_application(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'twilio_numbers.numbers_search, twilio_numbers.numbers_pricing, twilio_numbers.numbers_countries, '
        'twilio_numbers.numbers_deposit, '
        'twilio_numbers.numbers_purchase(bigint, text, text, text, text, text, text, text, text, text, text, text, text), '
        'twilio_numbers.numbers_purchase(bigint, text[], text, text, text, text, text, text, text, text, text, text, text), '
        'twilio_numbers.numbers_update, twilio_numbers.numbers_release, '
        'twilio_numbers.numbers_trunk_assign, twilio_numbers.numbers_trunk_unassign, '
        'twilio_numbers.numbers_trunk_numbers, twilio_numbers.numbers_transfer, '
        'twilio_numbers.numbers_messaging_assign, twilio_numbers.numbers_messaging_unassign, '
        'twilio_numbers.numbers_messaging_numbers, '
        'twilio_numbers.numbers_hosted_order, twilio_numbers.numbers_hosted_cancel, '
        'twilio_numbers.numbers_owned, twilio_numbers.numbers_cost_estimate, twilio_numbers.numbers_statement, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.accounts, twilio_numbers.owned_numbers, '
        'twilio_numbers.ledger, twilio_numbers.price_list, twilio_numbers.account_numbers, '
        'twilio_numbers.account_monthly_cost, twilio_numbers.hosted_orders, '
        'twilio_numbers.hosted_order_history TO %s', role);
    -- which Twilio account a customer's numbers live in is the DBA's
    -- decision (numbers_map_account), never the application's
    EXECUTE format('GRANT INSERT (name, currency, credit_limit, status), '
        'UPDATE (name, credit_limit, status) ON twilio_numbers.accounts TO %s', role);
END $$;

REVOKE ALL ON FUNCTION numbers_messaging_assign, numbers_messaging_unassign, numbers_messaging_numbers,
    _reconcile_messaging FROM PUBLIC;
