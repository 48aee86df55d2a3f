--------------------------------------------------------------------------
-- Buying, changing and releasing numbers.  Buying and changing are C:
-- Twilio is called in the caller's transaction; releasing is SQL: Twilio's
-- DELETE is the worker's, after the commit.
--------------------------------------------------------------------------

-- Write the rows and the ledger entries of a purchase Twilio has made.
-- p_numbers: [{phone_number, number_type, iso_country, locality, region,
--              setup_price, monthly_price, currency, twilio: {resource}}]
CREATE FUNCTION _purchase_record(p_account_id bigint, p_numbers jsonb)
RETURNS SETOF owned_numbers
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    ids bigint[];
BEGIN
    WITH ins AS (
        INSERT INTO twilio_numbers.owned_numbers
            (account_id, phone_number, twilio_sid, twilio_account_sid, status, number_type, iso_country,
             locality, region, setup_price, monthly_price, currency, origin,
             billing_anchor_day, period_start, next_billing_at)
        SELECT p_account_id, n->>'phone_number', n->'twilio'->>'sid', n->'twilio'->>'account_sid',
               'active', n->>'number_type', n->>'iso_country', n->>'locality', n->>'region',
               (n->>'setup_price')::numeric, (n->>'monthly_price')::numeric, n->>'currency', 'purchased',
               extract(day FROM today)::integer, today,
               twilio_numbers.period_end(today, extract(day FROM today)::integer)::timestamp AT TIME ZONE 'UTC'
        FROM jsonb_array_elements(p_numbers) WITH ORDINALITY AS x(n, ord)
        ORDER BY ord
        RETURNING number_id
    )
    SELECT array_agg(number_id ORDER BY number_id) INTO ids FROM ins;

    PERFORM twilio_numbers._apply_twilio(o.number_id, n->'twilio')
    FROM twilio_numbers.owned_numbers o
    JOIN jsonb_array_elements(p_numbers) n ON n->>'phone_number' = o.phone_number
    WHERE o.number_id = ANY (ids);

    -- one statement, so the ledger trigger debits the account once
    INSERT INTO twilio_numbers.ledger (account_id, amount, kind, number_id, period_start, period_end, memo)
    SELECT o.account_id, -o.setup_price, 'setup_fee', o.number_id, o.period_start, NULL,
           'setup fee ' || o.phone_number
    FROM twilio_numbers.owned_numbers o WHERE o.number_id = ANY (ids) AND o.setup_price > 0
    UNION ALL
    SELECT o.account_id, -o.monthly_price, 'monthly_fee', o.number_id, o.period_start,
           (o.next_billing_at AT TIME ZONE 'UTC')::date, 'first period ' || o.phone_number
    FROM twilio_numbers.owned_numbers o WHERE o.number_id = ANY (ids) AND o.monthly_price > 0;

    RETURN QUERY SELECT * FROM twilio_numbers.owned_numbers o WHERE o.number_id = ANY (ids)
                 ORDER BY o.number_id;
END $$;

-- Buy, change, assign to a trunk, transfer (C): each change at Twilio is an
-- intent of the caller's transaction, undone at Twilio if it rolls back
-- (docs/design.md "The life of a purchase").
CREATE FUNCTION numbers_purchase(
    account_id            bigint,
    phone_number          text,
    friendly_name         text DEFAULT NULL,
    voice_url             text DEFAULT NULL,
    voice_method          text DEFAULT NULL,
    sms_url               text DEFAULT NULL,
    sms_method            text DEFAULT NULL,
    status_callback       text DEFAULT NULL,
    trunk_sid             text DEFAULT NULL,
    address_sid           text DEFAULT NULL,
    bundle_sid            text DEFAULT NULL,
    identity_sid          text DEFAULT NULL,
    emergency_address_sid text DEFAULT NULL)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_purchase'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_purchase(bigint, text, text, text, text, text, text, text, text, text, text, text, text) IS
  'Buy one number for an account in the caller''s transaction: setup fee and first period debited.';

CREATE FUNCTION numbers_purchase(
    account_id            bigint,
    phone_numbers         text[],
    friendly_name         text DEFAULT NULL,
    voice_url             text DEFAULT NULL,
    voice_method          text DEFAULT NULL,
    sms_url               text DEFAULT NULL,
    sms_method            text DEFAULT NULL,
    status_callback       text DEFAULT NULL,
    trunk_sid             text DEFAULT NULL,
    address_sid           text DEFAULT NULL,
    bundle_sid            text DEFAULT NULL,
    identity_sid          text DEFAULT NULL,
    emergency_address_sid text DEFAULT NULL)
RETURNS SETOF owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_purchase_many'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 5;
COMMENT ON FUNCTION numbers_purchase(bigint, text[], text, text, text, text, text, text, text, text, text, text, text) IS
  'Buy several numbers for an account, all or nothing, in the caller''s transaction.';

CREATE FUNCTION numbers_update(
    account_id            bigint,
    phone_number          text,
    friendly_name         text DEFAULT NULL,
    voice_url             text DEFAULT NULL,
    voice_method          text DEFAULT NULL,
    sms_url               text DEFAULT NULL,
    sms_method            text DEFAULT NULL,
    status_callback       text DEFAULT NULL,
    trunk_sid             text DEFAULT NULL,
    address_sid           text DEFAULT NULL,
    bundle_sid            text DEFAULT NULL,
    identity_sid          text DEFAULT NULL,
    emergency_address_sid text DEFAULT NULL)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_update'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_update IS
  'Change a number''s configuration at Twilio and in its row (NULL: unchanged, '''': cleared); undone at Twilio on rollback.';

CREATE FUNCTION numbers_trunk_assign(account_id bigint, phone_number text, trunk_sid text)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_trunk_assign'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_trunk_assign IS 'Associate a number with a SIP trunk (Trunking v1 PhoneNumbers).';

CREATE FUNCTION numbers_trunk_unassign(account_id bigint, phone_number text)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_trunk_unassign'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_trunk_unassign IS 'Remove a number from its SIP trunk.';

CREATE FUNCTION numbers_trunk_numbers(trunk_sid text)
RETURNS SETOF owned_numbers
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM twilio_numbers.live_numbers o
    WHERE o.trunk_sid = numbers_trunk_numbers.trunk_sid
    ORDER BY o.phone_number;
END;
COMMENT ON FUNCTION numbers_trunk_numbers IS 'The live numbers associated with a trunk.';

CREATE FUNCTION numbers_transfer(phone_number text, from_account_id bigint, to_account_id bigint)
RETURNS owned_numbers
AS 'MODULE_PATHNAME', 'tn_numbers_transfer'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_transfer IS
  'Move a number to another account; between Twilio subaccounts it is moved at Twilio too. Ledger-neutral.';

-- Release a number: the refund now, Twilio's DELETE queued for the worker
-- after the commit.  The refund goes to the account that paid the current
-- period, for what it paid (a number transferred after its period was paid
-- is refunded to the payer); a past-due number, or a period nobody paid,
-- gets none.
CREATE FUNCTION numbers_release(account_id bigint, phone_number text) RETURNS numeric
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
