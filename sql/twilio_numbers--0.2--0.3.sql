-- twilio_numbers 0.2 -> 0.3: never touch at Twilio what this database
-- cannot prove it made.  Purchase attempts recorded before any request; the
-- Twilio accounts it manages mapped by a DBA alone; numbers it did not buy
-- reported and adoptable; and money that is always a finite amount.
\echo Use "ALTER EXTENSION twilio_numbers UPDATE TO '0.3'" to load this file. \quit

--------------------------------------------------------------------------
-- Proof of ownership: an attempt row, committed before the request
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
    CHECK ((state = 'open') = (outcome IS NULL))
);
COMMENT ON TABLE purchase_attempts IS
  'Requests that could create a number or hosted order at Twilio, committed before they were sent: the proof reconcile needs to release anything.';
COMMENT ON COLUMN purchase_attempts.recorded_in IS
  'system identifier:timeline:database where it was recorded; another epoch (failover, restored copy) proves nothing.';
COMMENT ON COLUMN purchase_attempts.deadline IS 'No request of the attempt can land at Twilio after this.';
COMMENT ON COLUMN purchase_attempts.request_md5 IS
  'md5 of the configuration the request sent (request_fields, "field=value" lines): what it created is configured so.';
CREATE INDEX purchase_attempts_open ON purchase_attempts (phone_number) WHERE state = 'open';
CREATE INDEX purchase_attempts_sid ON purchase_attempts (twilio_sid) WHERE twilio_sid IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('purchase_attempts', '');
SELECT pg_catalog.pg_extension_config_dump('purchase_attempts_attempt_id_seq', '');

-- the attempt a compensation or a hosted-order cancellation settles
ALTER TABLE work_queue ADD COLUMN attempt_id bigint REFERENCES purchase_attempts;
CREATE INDEX work_queue_sid ON work_queue (twilio_sid) WHERE status = 'pending';

CREATE FUNCTION _epoch() RETURNS text
AS 'MODULE_PATHNAME', 'tn_epoch_sql' LANGUAGE C VOLATILE;
CREATE FUNCTION _attempt_in_flight(attempt_id bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'tn_attempt_in_flight_sql' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION _sid_in_flight(sid text) RETURNS boolean
AS 'MODULE_PATHNAME', 'tn_sid_in_flight_sql' LANGUAGE C STRICT VOLATILE;

-- Twilio's dates (RFC 2822 in 2010-04-01, ISO 8601 in v1/v2); NULL if unreadable.
CREATE FUNCTION _twilio_time(t text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN t::timestamptz;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_parameter_value THEN
    RETURN NULL;
END $$;

-- Is r configured as a request that sent p_fields with fingerprint p_md5
-- ("field=value" lines, in p_fields' order)?  No fingerprint: no test.
CREATE FUNCTION _configured_as(r jsonb, p_fields text[], p_md5 text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN p_md5 IS NULL
    OR md5(coalesce((SELECT string_agg(f || '=' || coalesce(r->>f, '') || E'\n', '' ORDER BY o)
                     FROM unnest(p_fields) WITH ORDINALITY AS u(f, o)), '')) = p_md5;

-- Could r, found at Twilio under p_phone after a lost reply, have been
-- created by an attempt that ran from p_started to p_deadline — and by no
-- one else?  Created in that time (Twilio's clock may differ by minutes),
-- in that account, configured as the attempt asked, and known to this
-- database as nothing else.
CREATE FUNCTION _created_by_attempt(r jsonb, p_phone text, p_account text, p_started timestamptz,
                                    p_deadline timestamptz, p_fields text[], p_md5 text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN r->>'phone_number' = p_phone
   AND coalesce(r->>'account_sid', p_account) = p_account
   AND coalesce(twilio_numbers._twilio_time(r->>'date_created')
                BETWEEN p_started - interval '5 minutes' AND p_deadline + interval '5 minutes', false)
   AND twilio_numbers._configured_as(r, p_fields, p_md5)
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.twilio_sid = r->>'sid')
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.hosted_orders h
                   WHERE h.order_sid = r->>'sid' OR h.incoming_phone_number_sid = r->>'sid')
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.purchase_attempts a WHERE a.twilio_sid = r->>'sid')
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                   WHERE q.twilio_sid = r->>'sid' AND q.status = 'pending');

--------------------------------------------------------------------------
-- The Twilio accounts this database manages: the DBA's decision
--------------------------------------------------------------------------

CREATE FUNCTION _mapping_allowed() RETURNS boolean
AS 'MODULE_PATHNAME', 'tn_mapping_allowed_sql' LANGUAGE C VOLATILE;

-- The main account, the subaccounts a DBA mapped, and those our live
-- numbers are in: the only accounts reconcile lists.
CREATE FUNCTION _managed_accounts(p_main text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT array_agg(s ORDER BY s <> p_main, s)
        FROM (SELECT p_main AS s
              UNION SELECT a.twilio_account_sid FROM twilio_numbers.accounts a
                    WHERE a.twilio_account_sid IS NOT NULL
              UNION SELECT o.twilio_account_sid FROM twilio_numbers.owned_numbers o
                    WHERE o.status <> 'released' AND o.twilio_account_sid IS NOT NULL) m);

-- Money is a finite amount in currency units, at most 2 decimals: no NaN,
-- no infinity (which numeric accepts), nothing beyond numeric(14,2).
CREATE FUNCTION _check_money(p_name text, p_amount numeric, p_positive boolean) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_amount IS NULL OR p_amount = 'NaN' OR p_amount IN ('Infinity', '-Infinity')
       OR abs(p_amount) >= 1e12 OR p_amount <> round(p_amount, 2)
       OR p_amount < 0 OR (p_positive AND p_amount = 0) THEN
        RAISE EXCEPTION '% must be a finite % amount of money with at most 2 decimals, not %',
                        p_name, CASE WHEN p_positive THEN 'positive' ELSE 'non-negative' END,
                        coalesce(p_amount::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    RETURN p_amount;
END $$;

-- (SECURITY DEFINER: it runs for application roles, which may not call the
-- extension's internal functions themselves)
CREATE OR REPLACE FUNCTION _accounts_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM twilio_numbers._check_money('credit_limit', NEW.credit_limit, false);
    IF TG_OP = 'INSERT' THEN
        NEW.balance := 0;
    ELSIF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'accounts.balance changes only through the ledger'
            USING ERRCODE = '23000',
                  HINT = 'Use numbers_deposit(), or insert an adjustment through a DBA.';
    ELSIF NEW.currency IS DISTINCT FROM OLD.currency
          AND EXISTS (SELECT 1 FROM twilio_numbers.ledger l WHERE l.account_id = OLD.account_id) THEN
        RAISE EXCEPTION 'account % has ledger entries in %; its currency cannot change',
                        OLD.account_id, OLD.currency
            USING ERRCODE = '23000';
    ELSIF NEW.twilio_account_sid IS DISTINCT FROM OLD.twilio_account_sid
          AND NOT twilio_numbers._mapping_allowed() THEN
        RAISE EXCEPTION 'accounts.twilio_account_sid changes only through numbers_map_account()'
            USING ERRCODE = '42501',
                  HINT = 'numbers_map_account() checks with Twilio that the account is this one or one of its subaccounts.';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION _price_list_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM twilio_numbers._check_money('setup_price', NEW.setup_price, false);
    PERFORM twilio_numbers._check_money('monthly_price', NEW.monthly_price, false);
    RETURN NEW;
END $$;
CREATE TRIGGER price_list_guard BEFORE INSERT OR UPDATE ON price_list
    FOR EACH ROW EXECUTE FUNCTION _price_list_guard();

CREATE FUNCTION numbers_map_account(account_id bigint, twilio_account_sid text) RETURNS accounts
AS 'MODULE_PATHNAME', 'tn_numbers_map_account'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_map_account IS
  'DBA: map a customer account to a Twilio subaccount (checked with Twilio), or NULL for the main account.';

-- the mapping is no longer the application's to write
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT x.grantee::regrole AS grantee
             FROM pg_catalog.pg_attribute a, aclexplode(a.attacl) x
             WHERE a.attrelid = 'twilio_numbers.accounts'::regclass AND a.attname = 'twilio_account_sid'
               AND x.grantee <> 0
    LOOP
        EXECUTE format('REVOKE INSERT (twilio_account_sid), UPDATE (twilio_account_sid) '
                       'ON twilio_numbers.accounts FROM %s', r.grantee);
    END LOOP;
END $$;

--------------------------------------------------------------------------
-- Numbers at Twilio that this database did not buy: reported, adoptable
--------------------------------------------------------------------------

ALTER TABLE owned_numbers DROP CONSTRAINT owned_numbers_origin_check;
ALTER TABLE owned_numbers ADD CONSTRAINT owned_numbers_origin_check
    CHECK (origin IN ('purchased', 'hosted', 'transferred', 'adopted'));

ALTER TABLE drift DROP CONSTRAINT drift_finding_check;
ALTER TABLE drift ADD CONSTRAINT drift_finding_check
    CHECK (finding IN ('orphan_at_twilio', 'vanished_at_twilio', 'config_drift', 'unmanaged_at_twilio',
                       'unproven_after_failover', 'account_unreachable'));

-- What reconcile saw at Twilio in a managed account and may not touch.
CREATE TABLE unmanaged_at_twilio (
    twilio_sid         text PRIMARY KEY,
    phone_number       text NOT NULL,
    twilio_account_sid text NOT NULL,
    in_main_account    boolean NOT NULL,
    friendly_name      text,
    resource           jsonb NOT NULL,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE unmanaged_at_twilio IS
  'Numbers in a managed Twilio account that this database did not buy: reported once, never touched.';
SELECT pg_catalog.pg_extension_config_dump('unmanaged_at_twilio', '');

CREATE VIEW unmanaged_numbers AS
SELECT u.phone_number, u.twilio_sid, u.twilio_account_sid, u.friendly_name,
       twilio_numbers._capabilities(u.resource->'capabilities') AS capabilities,
       nullif(u.resource->>'trunk_sid', '') AS trunk_sid,
       (SELECT array_agg(a.account_id ORDER BY a.account_id) FROM twilio_numbers.accounts a
        WHERE a.twilio_account_sid = u.twilio_account_sid
           OR (u.in_main_account AND a.twilio_account_sid IS NULL)) AS adoptable_by,
       u.first_seen_at, u.last_seen_at
FROM unmanaged_at_twilio u;
COMMENT ON VIEW unmanaged_numbers IS
  'Numbers at Twilio this database did not buy, with the customer accounts that could adopt them (numbers_adopt).';

-- Write the row of an adopted number (r: Twilio's IncomingPhoneNumber) and,
-- unless the customer already paid it, the charge of its first period.
CREATE FUNCTION _adopt_record(p_account_id bigint, r jsonb, p_number_type text, p_iso_country text,
                              p_monthly_price numeric, p_currency text, p_period_paid boolean)
RETURNS owned_numbers
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    num twilio_numbers.owned_numbers;
BEGIN
    INSERT INTO twilio_numbers.owned_numbers
        (account_id, phone_number, twilio_sid, twilio_account_sid, status, number_type, iso_country,
         setup_price, monthly_price, currency, origin, billing_anchor_day, period_start, next_billing_at)
    VALUES (p_account_id, r->>'phone_number', r->>'sid', r->>'account_sid', 'active', p_number_type,
            p_iso_country, 0, p_monthly_price, p_currency, 'adopted', extract(day FROM today)::integer, today,
            twilio_numbers.period_end(today, extract(day FROM today)::integer)::timestamp AT TIME ZONE 'UTC')
    RETURNING * INTO num;
    PERFORM twilio_numbers._apply_twilio(num.number_id, r);
    IF NOT p_period_paid AND num.monthly_price > 0 THEN
        INSERT INTO twilio_numbers.ledger (account_id, amount, kind, number_id, period_start, period_end, memo)
        VALUES (num.account_id, -num.monthly_price, 'monthly_fee', num.number_id, num.period_start,
                (num.next_billing_at AT TIME ZONE 'UTC')::date, 'first period ' || num.phone_number);
    END IF;
    DELETE FROM twilio_numbers.unmanaged_at_twilio u WHERE u.twilio_sid = r->>'sid';
    RETURN (SELECT o FROM twilio_numbers.owned_numbers o WHERE o.number_id = num.number_id);
END $$;

CREATE FUNCTION numbers_adopt(
    account_id        bigint,
    phone_number      text,
    number_type       text    DEFAULT NULL,
    monthly_price     numeric DEFAULT NULL,
    first_period_paid boolean DEFAULT false)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_adopt'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_adopt IS
  'Bring a number already at Twilio (in a managed account) under a customer account, without buying it; billed from today.';

--------------------------------------------------------------------------
-- Reconcile: only what is provably ours is ever released
--------------------------------------------------------------------------

DROP FUNCTION _reconcile(bigint[], text[], text);

-- Compare the rows seen before the listing (p_seen) with the numbers Twilio
-- listed (pg_temp.tn_reconcile_seen) in the accounts of p_listed (p_failed:
-- accounts whose listing failed, with why), judge the open attempts read
-- before the listing (p_attempts), act and record each difference.
CREATE FUNCTION _reconcile(p_seen bigint[], p_listed text[], p_failed jsonb, p_attempts bigint[],
                           p_main text, p_epoch text)
RETURNS SETOF drift
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- an account that could not be listed: reported, left out of every
    -- conclusion that needs its whole list
    RETURN QUERY
    INSERT INTO twilio_numbers.drift (finding, detail, action)
    SELECT 'account_unreachable', jsonb_build_object('account_sid', f.key, 'error', f.value),
           'none: listed again at the next pass'
    FROM jsonb_each_text(p_failed) f
    RETURNING *;

    -- every number at Twilio that no live row owns, judged:
    --   queued     its release or compensation is queued already;
    --   ours       a row of ours released it, or an attempt of this epoch
    --              created it and is over: released (compensate job);
    --   unproven   an attempt of another epoch (a promoted standby, a
    --              restored copy) may have created it: reported, never released;
    --   unmanaged  everything else: someone else's, reported once, never touched
    RETURN QUERY
    WITH unowned AS MATERIALIZED (
        SELECT t.sid, t.phone, t.account_sid, t.r,
               EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                       WHERE q.twilio_sid = t.sid AND q.status = 'pending') AS queued,
               EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.twilio_sid = t.sid) AS released_here,
               -- the attempt that created it: by the SID it recorded, or (a crash
               -- came before it could) by what it asked for, when and where
               (SELECT a.attempt_id FROM twilio_numbers.purchase_attempts a
                WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
                  AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
                  AND (a.twilio_sid = t.sid
                       OR (a.twilio_sid IS NULL AND a.phone_number = t.phone AND a.twilio_account_sid = t.account_sid
                           AND t.created BETWEEN a.started_at - interval '5 minutes'
                                             AND a.deadline + interval '5 minutes'
                           AND twilio_numbers._configured_as(t.r, a.request_fields, a.request_md5)))
                ORDER BY a.twilio_sid IS NOT NULL DESC, a.recorded_in = p_epoch DESC, a.attempt_id DESC
                LIMIT 1) AS attempt_id
        FROM pg_temp.tn_reconcile_seen t
        WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o
                          WHERE o.twilio_sid = t.sid AND o.status <> 'released')
          -- a hosted order of ours completing: the worker is about to write its number
          AND NOT EXISTS (SELECT 1 FROM twilio_numbers.hosted_orders h
                          WHERE h.number_id IS NULL
                            AND (h.incoming_phone_number_sid = t.sid
                                 OR (h.phone_number = t.phone AND h.status NOT IN ('failed', 'canceled'))))
          -- a purchase in flight decides for itself
          AND NOT twilio_numbers._purchase_in_flight(t.phone)
          AND NOT twilio_numbers._sid_in_flight(t.sid)),
    judged AS MATERIALIZED (
        SELECT u.*, a.recorded_in,
               CASE WHEN u.queued THEN 'queued'
                    WHEN u.released_here THEN 'ours'
                    WHEN a.recorded_in = p_epoch THEN 'ours'
                    WHEN a.attempt_id IS NOT NULL THEN 'unproven'
                    ELSE 'unmanaged' END AS verdict
        FROM unowned u LEFT JOIN twilio_numbers.purchase_attempts a ON a.attempt_id = u.attempt_id),
    compensated AS (
        INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload,
                                               attempt_id)
        SELECT 'compensate', j.phone, j.sid, j.account_sid, '{"reason": "reconcile"}', j.attempt_id
        FROM judged j WHERE j.verdict = 'ours'
        RETURNING 1),
    unproven AS (
        UPDATE twilio_numbers.purchase_attempts a
        SET state = 'closed', outcome = 'unproven', twilio_sid = j.sid, closed_at = now()
        FROM judged j WHERE j.verdict = 'unproven' AND a.attempt_id = j.attempt_id
        RETURNING 1),
    kept AS (
        INSERT INTO twilio_numbers.unmanaged_at_twilio
            (twilio_sid, phone_number, twilio_account_sid, in_main_account, friendly_name, resource)
        SELECT j.sid, j.phone, j.account_sid, j.account_sid = p_main, j.r->>'friendly_name', j.r
        FROM judged j WHERE j.verdict IN ('unproven', 'unmanaged')
        ON CONFLICT (twilio_sid) DO UPDATE
        SET last_seen_at = now(), friendly_name = excluded.friendly_name, resource = excluded.resource,
            twilio_account_sid = excluded.twilio_account_sid, in_main_account = excluded.in_main_account
        RETURNING twilio_sid, first_seen_at = now() AS first_seen)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, detail, action)
    SELECT CASE j.verdict WHEN 'unproven' THEN 'unproven_after_failover'
                          WHEN 'unmanaged' THEN 'unmanaged_at_twilio'
                          ELSE 'orphan_at_twilio' END,
           j.phone, j.sid,
           jsonb_strip_nulls(jsonb_build_object('account_sid', j.account_sid, 'attempt_id', j.attempt_id,
                                                'recorded_in', j.recorded_in,
                                                'friendly_name', j.r->>'friendly_name')),
           CASE j.verdict WHEN 'queued' THEN 'none: its release is already queued'
                          WHEN 'ours' THEN 'release queued'
                          WHEN 'unproven' THEN 'none: reported, never released (attempted before a failover or restore)'
                          ELSE 'none: not bought here; reported, never touched' END
    FROM judged j
    WHERE j.verdict IN ('queued', 'ours')
       OR (SELECT k.first_seen FROM kept k WHERE k.twilio_sid = j.sid)
    RETURNING *;

    -- a number reported unmanaged is announced once, when first seen
    PERFORM pg_notify('twilio_numbers_unmanaged',
                      json_build_object('phone_number', u.phone_number, 'twilio_sid', u.twilio_sid,
                                        'account_sid', u.twilio_account_sid)::text)
    FROM twilio_numbers.unmanaged_at_twilio u WHERE u.first_seen_at = now();
    -- and forgotten once it is gone from a fully listed account, or ours now
    DELETE FROM twilio_numbers.unmanaged_at_twilio u
    WHERE (u.twilio_account_sid = ANY (p_listed)
           AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t WHERE t.sid = u.twilio_sid))
       OR EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o
                  WHERE o.twilio_sid = u.twilio_sid AND o.status <> 'released');

    -- open attempts read before the listing whose transactions are over:
    -- a row of ours has the SID it recorded (the crash came after the commit) ...
    UPDATE twilio_numbers.purchase_attempts a
    SET state = 'closed', outcome = 'committed', closed_at = now()
    FROM twilio_numbers.owned_numbers o
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
      AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND o.twilio_sid = a.twilio_sid;
    -- ... or a job settles it: by its SID, or — a request still on its way
    -- when the crash came may land later — looking the number up until then
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    SELECT 'compensate', a.phone_number, a.twilio_sid, a.twilio_account_sid, '{"reason": "reconcile"}', a.attempt_id
    FROM twilio_numbers.purchase_attempts a
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
      AND a.recorded_in = p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                      WHERE q.attempt_id = a.attempt_id AND q.status = 'pending');
    -- an attempt of another epoch is never undone: reported if its number is
    -- at Twilio (above), closed either way
    UPDATE twilio_numbers.purchase_attempts a
    SET state = 'closed', outcome = 'unproven', closed_at = now()
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'purchase'
      AND a.recorded_in <> p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id);
    -- a hosted order being filed when the crash came: a committed order
    -- closes it; this epoch's is undone by a job, another epoch's reported
    UPDATE twilio_numbers.purchase_attempts a
    SET state = 'closed', outcome = 'committed', closed_at = now()
    FROM twilio_numbers.hosted_orders h
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'hosted_order'
      AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND h.order_sid = a.twilio_sid;
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    SELECT 'hosted_cancel', a.phone_number, a.twilio_sid, a.twilio_account_sid, '{"reason": "reconcile"}', a.attempt_id
    FROM twilio_numbers.purchase_attempts a
    WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'hosted_order'
      AND a.recorded_in = p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
      AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                      WHERE q.attempt_id = a.attempt_id AND q.status = 'pending');
    RETURN QUERY
    WITH closed AS (
        UPDATE twilio_numbers.purchase_attempts a
        SET state = 'closed', outcome = 'unproven', closed_at = now()
        WHERE a.attempt_id = ANY (p_attempts) AND a.state = 'open' AND a.kind = 'hosted_order'
          AND a.recorded_in <> p_epoch AND NOT twilio_numbers._attempt_in_flight(a.attempt_id)
        RETURNING a.*)
    INSERT INTO twilio_numbers.drift (finding, phone_number, detail, action)
    SELECT 'unproven_after_failover', c.phone_number,
           jsonb_build_object('attempt_id', c.attempt_id, 'kind', c.kind, 'recorded_in', c.recorded_in),
           'none: a hosted order may have been filed before a failover or restore; reported, never canceled'
    FROM closed c
    RETURNING *;

    -- live rows (seen before the listing) whose number Twilio no longer has
    RETURN QUERY
    WITH gone AS (
        UPDATE twilio_numbers.owned_numbers o
        SET status = 'released', released_at = now(), updated_at = now()
        WHERE o.number_id = ANY (p_seen)
          AND o.status IN ('active', 'past_due')
          AND coalesce(o.twilio_account_sid, p_main) = ANY (p_listed)
          AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t WHERE t.sid = o.twilio_sid)
        RETURNING o.number_id, o.account_id, o.phone_number, o.twilio_sid)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, number_id, account_id, action)
    SELECT 'vanished_at_twilio', g.phone_number, g.twilio_sid, g.number_id, g.account_id,
           'marked released (no refund)'
    FROM gone g
    RETURNING *;

    -- configuration that differs, or a number of ours in another managed
    -- account than its row says (a transfer rolled back when a crash took
    -- the worker's memory of it): Twilio is put back in step with the row
    RETURN QUERY
    WITH differs AS MATERIALIZED (
        SELECT o.number_id, o.account_id, o.phone_number, o.twilio_sid,
               twilio_numbers._config_to_push(o.number_id, t.r) AS push,
               nullif(t.account_sid, coalesce(o.twilio_account_sid, p_main)) AS moved_to
        FROM twilio_numbers.owned_numbers o
        JOIN pg_temp.tn_reconcile_seen t ON t.sid = o.twilio_sid
        WHERE o.status IN ('active', 'past_due') AND t.r IS NOT NULL),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, payload)
        SELECT 'resync', d.number_id, d.phone_number,
               jsonb_strip_nulls(jsonb_build_object('reason', 'reconcile', 'other_account_sid', d.moved_to))
        FROM differs d
        WHERE (d.push <> '{}' OR d.moved_to IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                          WHERE q.number_id = d.number_id AND q.kind = 'resync' AND q.status = 'pending')
        RETURNING number_id)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, number_id, account_id, detail, action)
    SELECT 'config_drift', d.phone_number, d.twilio_sid, d.number_id, d.account_id,
           jsonb_strip_nulls(jsonb_build_object('to_push', nullif(d.push, '{}'), 'moved_to', d.moved_to)),
           'resync queued'
    FROM differs d WHERE d.push <> '{}' OR d.moved_to IS NOT NULL
    RETURNING *;

    PERFORM twilio_numbers._wake_worker_at_commit();
END $$;

COMMENT ON FUNCTION numbers_reconcile IS
  'Compare owned_numbers with the managed Twilio accounts: release only what is provably ours, report the rest, mark vanished numbers, re-sync drift.';

--------------------------------------------------------------------------
-- Money: finite amounts; refunds to the payer; grace from the finding
--------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION numbers_deposit(account_id bigint, amount numeric, memo text DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a record;
BEGIN
    PERFORM twilio_numbers._check_money('amount', numbers_deposit.amount, true);
    SELECT x.status, x.currency INTO a FROM twilio_numbers.accounts x
    WHERE x.account_id = numbers_deposit.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', numbers_deposit.account_id USING ERRCODE = 'P0002';
    END IF;
    IF a.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', numbers_deposit.account_id USING ERRCODE = '55000';
    END IF;
    INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo)
    VALUES (numbers_deposit.account_id, numbers_deposit.amount, 'deposit', numbers_deposit.memo);
    RETURN (SELECT x.balance FROM twilio_numbers.accounts x WHERE x.account_id = numbers_deposit.account_id);
END $$;

-- The refund goes to the account that paid the current period, for what it
-- paid (a number transferred after its period was paid is refunded to the
-- payer); a past-due number, or a period nobody paid, gets none.
CREATE OR REPLACE FUNCTION numbers_release(account_id bigint, phone_number text) RETURNS numeric
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.owned_numbers;
    paid record;
    refund numeric := 0;
BEGIN
    PERFORM twilio_numbers._require_worker();
    r := twilio_numbers._live_number(numbers_release.account_id, numbers_release.phone_number);
    IF r.status = 'active' THEN
        SELECT l.account_id, -l.amount AS amount INTO paid FROM twilio_numbers.ledger l
        WHERE l.number_id = r.number_id AND l.kind = 'monthly_fee' AND l.period_start = r.period_start;
        IF FOUND THEN
            refund := twilio_numbers.prorated_refund(paid.amount, r.period_start,
                                                     (r.next_billing_at AT TIME ZONE 'UTC')::date,
                                                     (now() AT TIME ZONE 'UTC')::date);
        END IF;
    END IF;
    IF refund > 0 THEN
        INSERT INTO twilio_numbers.ledger (account_id, amount, kind, number_id, period_start, period_end, memo)
        VALUES (paid.account_id, refund, 'refund', r.number_id, r.period_start,
                (r.next_billing_at AT TIME ZONE 'UTC')::date, 'prorated refund ' || r.phone_number);
    END IF;
    UPDATE twilio_numbers.owned_numbers o SET status = 'releasing', released_at = now(), updated_at = now()
    WHERE o.number_id = r.number_id;
    INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, twilio_account_sid)
    VALUES ('release', r.number_id, r.phone_number, r.twilio_sid, r.twilio_account_sid);
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN refund;
END $$;
COMMENT ON FUNCTION numbers_release IS
  'Release a number: prorated refund now, to the account that paid the period; Twilio''s DELETE after commit, by the worker, surely.';

CREATE OR REPLACE FUNCTION _bill_range(p_lo bigint, p_hi bigint, p_as_of timestamptz,
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

CREATE OR REPLACE FUNCTION numbers_run_billing(as_of timestamptz DEFAULT now()) RETURNS billing_runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run twilio_numbers.billing_runs;
    los bigint[];
    his bigint[];
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite instant, not %', coalesce(as_of::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT coalesce(array_agg(lo ORDER BY lo), '{}'), coalesce(array_agg(hi ORDER BY lo), '{}')
    INTO los, his
    FROM twilio_numbers._billing_batches(numbers_run_billing.as_of,
                                         current_setting('twilio_numbers.billing_batch_size')::integer);
    INSERT INTO twilio_numbers.billing_runs (as_of, started_by, batches_total)
    VALUES (numbers_run_billing.as_of, 'manual', cardinality(los))
    RETURNING * INTO run;
    FOR i IN 1 .. cardinality(los) LOOP
        PERFORM twilio_numbers._billing_run_batch(run.run_id, los[i], his[i], numbers_run_billing.as_of);
    END LOOP;
    RETURN twilio_numbers._billing_run_finish(run.run_id);
END $$;

--------------------------------------------------------------------------
-- Monitoring: attempts in flight
--------------------------------------------------------------------------

DROP VIEW inflight;
DROP FUNCTION inflight_entries();
CREATE FUNCTION inflight_entries(
    OUT kind text, OUT state text, OUT pid integer, OUT xid xid, OUT account_id bigint,
    OUT number_id bigint, OUT phone_number text, OUT twilio_sid text, OUT held numeric,
    OUT posted boolean, OUT started_at timestamptz, OUT attempt_id bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tn_inflight' LANGUAGE C VOLATILE;
CREATE VIEW inflight AS SELECT * FROM inflight_entries();
COMMENT ON VIEW inflight IS
  'Purchases and changes whose transactions are open or not yet settled by the worker, with the funds they hold.';

--------------------------------------------------------------------------
-- Roles
--------------------------------------------------------------------------

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

CREATE OR REPLACE FUNCTION grant_reporting(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA twilio_numbers TO %s', role);
    -- the views over shared memory call these read-only functions
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.call_log_entries, '
        'twilio_numbers.inflight_entries, twilio_numbers.worker_info, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund, '
        'twilio_numbers._capabilities TO %s', role);
END $$;

-- adopted numbers are filtered like the others
CREATE OR REPLACE FUNCTION numbers_owned(
    account_id    bigint  DEFAULT NULL,
    friendly_name text    DEFAULT NULL,
    phone_number  text    DEFAULT NULL,
    origin        text    DEFAULT NULL,
    beta          boolean DEFAULT NULL,
    capabilities  text[]  DEFAULT NULL,
    trunk_sid     text    DEFAULT NULL,
    status        text    DEFAULT NULL,
    number_type   text    DEFAULT NULL,
    iso_country   text    DEFAULT NULL)
RETURNS SETOF owned_numbers
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF numbers_owned.phone_number !~ '^\+?[0-9*]{1,15}$' THEN
        RAISE EXCEPTION 'phone_number filter must be digits, optionally with + and * for any digit, not "%"',
                        numbers_owned.phone_number USING ERRCODE = '22023';
    END IF;
    IF numbers_owned.origin NOT IN ('purchased', 'hosted', 'transferred', 'adopted') THEN
        RAISE EXCEPTION 'origin must be purchased, hosted, transferred or adopted, not "%"', numbers_owned.origin
            USING ERRCODE = '22023';
    END IF;
    IF numbers_owned.status NOT IN ('active', 'past_due', 'releasing', 'released') THEN
        RAISE EXCEPTION 'status must be active, past_due, releasing or released, not "%"', numbers_owned.status
            USING ERRCODE = '22023';
    END IF;
    IF NOT numbers_owned.capabilities <@ ARRAY['voice', 'sms', 'mms', 'fax'] THEN
        RAISE EXCEPTION 'capabilities must be among voice, sms, mms, fax, not %', numbers_owned.capabilities
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT o.* FROM twilio_numbers.owned_numbers o
    WHERE (numbers_owned.account_id IS NULL OR o.account_id = numbers_owned.account_id)
      AND (numbers_owned.friendly_name IS NULL OR o.friendly_name = numbers_owned.friendly_name)
      AND (numbers_owned.phone_number IS NULL
           OR o.phone_number LIKE '%' || replace(numbers_owned.phone_number, '*', '_') || '%')
      AND (numbers_owned.origin IS NULL OR o.origin = numbers_owned.origin)
      AND (numbers_owned.beta IS NULL OR o.beta = numbers_owned.beta)
      AND (numbers_owned.capabilities IS NULL OR o.capabilities @> numbers_owned.capabilities)
      AND (numbers_owned.trunk_sid IS NULL OR o.trunk_sid = numbers_owned.trunk_sid)
      AND (CASE WHEN numbers_owned.status IS NULL THEN o.status <> 'released' ELSE o.status = numbers_owned.status END)
      AND (numbers_owned.number_type IS NULL OR o.number_type = numbers_owned.number_type)
      AND (numbers_owned.iso_country IS NULL OR o.iso_country = upper(numbers_owned.iso_country))
    ORDER BY o.account_id, o.phone_number;
END $$;
COMMENT ON FUNCTION numbers_owned IS
  'Owned numbers filtered as Twilio''s Active Numbers list filters them: name, number pattern, origin, beta, capabilities, trunk, status.';

-- reporting roles granted before this version read the new tables too
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT x.grantee::regrole AS grantee
             FROM pg_catalog.pg_class c, aclexplode(c.relacl) x
             WHERE c.oid = 'twilio_numbers.drift'::regclass AND x.privilege_type = 'SELECT' AND x.grantee <> 0
    LOOP
        EXECUTE format('GRANT SELECT ON twilio_numbers.purchase_attempts, twilio_numbers.unmanaged_at_twilio, '
                       'twilio_numbers.unmanaged_numbers, twilio_numbers.inflight TO %s', r.grantee);
    END LOOP;
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM PUBLIC;
