--------------------------------------------------------------------------
-- Hosted number orders (numbers v2): a number the customer owns elsewhere,
-- hosted on Twilio for SMS; the worker follows each order's life cycle
--------------------------------------------------------------------------

-- One row per order, with the status Twilio last gave it; a completed order
-- gets its owned number (number_id).
CREATE TABLE hosted_orders (
    order_sid                 text PRIMARY KEY CHECK (order_sid ~ '^HR[0-9a-fA-F]{32}$'),
    account_id                bigint NOT NULL REFERENCES accounts,
    phone_number              text NOT NULL,
    status                    text NOT NULL
                              CHECK (status IN ('twilio-processing', 'received', 'pending-verification', 'verified',
                                                'pending-loa', 'carrier-processing', 'testing', 'completed',
                                                'failed', 'action-required', 'canceled')),
    status_changed_at         timestamptz NOT NULL DEFAULT now(),
    failure_reason            text,
    contact_email             text,
    contact_phone_number      text,
    address_sid               text,
    friendly_name             text,
    sms_url                   text,
    sms_method                text,
    status_callback           text,
    incoming_phone_number_sid text,
    number_id                 bigint REFERENCES owned_numbers,
    twilio_account_sid        text,
    polls                     integer NOT NULL DEFAULT 0,
    twilio                    jsonb,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hosted_orders IS
  'Hosted number orders (Twilio numbers v2) and their current status; history in hosted_order_history.';
CREATE UNIQUE INDEX hosted_orders_live_phone ON hosted_orders (phone_number)
    WHERE status NOT IN ('completed', 'failed', 'canceled');
CREATE INDEX hosted_orders_account ON hosted_orders (account_id);
SELECT pg_catalog.pg_extension_config_dump('hosted_orders', '');

CREATE TABLE hosted_order_history (
    order_sid      text NOT NULL REFERENCES hosted_orders,
    status         text NOT NULL,
    failure_reason text,
    seen_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hosted_order_history IS 'Every status a hosted order was seen in, in order.';
CREATE INDEX hosted_order_history_order ON hosted_order_history (order_sid, seen_at);
SELECT pg_catalog.pg_extension_config_dump('hosted_order_history', '');

-- Record an order Twilio has just created (called by numbers_hosted_order);
-- its first poll is due after p_poll_after (the hosted_poll_ms setting,
-- passed by the caller; NULL: read here).
CREATE FUNCTION _hosted_order_record(p_account_id bigint, r jsonb, ours jsonb, p_poll_after interval DEFAULT NULL)
RETURNS hosted_orders
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o twilio_numbers.hosted_orders;
BEGIN
    INSERT INTO twilio_numbers.hosted_orders
        (order_sid, account_id, phone_number, status, failure_reason, contact_email, contact_phone_number,
         address_sid, friendly_name, sms_url, sms_method, status_callback, incoming_phone_number_sid,
         twilio_account_sid, twilio)
    VALUES (r->>'sid', p_account_id, r->>'phone_number', r->>'status', nullif(r->>'failure_reason', ''),
            ours->>'contact_email', ours->>'contact_phone_number',
            coalesce(r->>'address_sid', ours->>'address_sid'), coalesce(r->>'friendly_name', ours->>'friendly_name'),
            coalesce(r->>'sms_url', ours->>'sms_url'), coalesce(r->>'sms_method', ours->>'sms_method'),
            coalesce(r->>'status_callback_url', r->>'status_callback', ours->>'status_callback'),
            r->>'incoming_phone_number_sid', r->>'account_sid', r)
    RETURNING * INTO o;
    INSERT INTO twilio_numbers.hosted_order_history (order_sid, status, failure_reason)
    VALUES (o.order_sid, o.status, o.failure_reason);
    -- the worker follows it from now on
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, payload, next_attempt_at)
    VALUES ('hosted_poll', o.phone_number, jsonb_build_object('order_sid', o.order_sid),
            now() + coalesce(p_poll_after, current_setting('twilio_numbers.hosted_poll_ms')::interval));
    PERFORM pg_notify('twilio_numbers_hosted',
                      json_build_object('order_sid', o.order_sid, 'phone_number', o.phone_number,
                                        'status', o.status)::text);
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN o;
END $$;

-- The worker saw an order (r: Twilio's resource, NULL if Twilio no longer
-- has it).  Records a change of status with its history and a NOTIFY; a
-- completed order becomes an owned number (origin hosted), charged its
-- setup fee and first period if the account can pay, past due otherwise.
-- Returns the order's status now.
CREATE FUNCTION _hosted_order_seen(p_order_sid text, r jsonb, p_number jsonb DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o twilio_numbers.hosted_orders;
    new_status text := CASE WHEN r IS NULL THEN 'canceled' ELSE r->>'status' END;
    price record;
    acct record;
    can_pay boolean;
    today date := (now() AT TIME ZONE 'UTC')::date;
    num twilio_numbers.owned_numbers;
BEGIN
    SELECT * INTO o FROM twilio_numbers.hosted_orders WHERE order_sid = p_order_sid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF new_status IS DISTINCT FROM o.status OR nullif(r->>'failure_reason', '') IS DISTINCT FROM o.failure_reason THEN
        UPDATE twilio_numbers.hosted_orders SET
            status = new_status, status_changed_at = now(),
            failure_reason = nullif(r->>'failure_reason', ''),
            incoming_phone_number_sid = coalesce(r->>'incoming_phone_number_sid', incoming_phone_number_sid),
            twilio = coalesce(r, twilio), updated_at = now()
        WHERE order_sid = p_order_sid;
        INSERT INTO twilio_numbers.hosted_order_history (order_sid, status, failure_reason)
        VALUES (p_order_sid, new_status, nullif(r->>'failure_reason', ''));
        PERFORM pg_notify('twilio_numbers_hosted',
                          json_build_object('order_sid', p_order_sid, 'phone_number', o.phone_number,
                                            'status', new_status,
                                            'failure_reason', nullif(r->>'failure_reason', ''))::text);
    END IF;

    -- completed: the number is ours now, once
    IF new_status = 'completed' AND o.number_id IS NULL THEN
        SELECT * INTO price FROM twilio_numbers._hosted_price(o.phone_number);
        SELECT a.balance + a.credit_limit AS available, a.currency INTO acct
        FROM twilio_numbers.accounts a WHERE a.account_id = o.account_id FOR NO KEY UPDATE;
        can_pay := acct.available >= price.setup_price + price.monthly_price;
        INSERT INTO twilio_numbers.owned_numbers
            (account_id, phone_number, twilio_sid, twilio_account_sid, status, number_type, iso_country,
             setup_price, monthly_price, currency, origin, billing_anchor_day, period_start, next_billing_at,
             past_due_since)
        VALUES (o.account_id, o.phone_number, coalesce(p_number->>'sid', r->>'incoming_phone_number_sid'),
                coalesce(p_number->>'account_sid', o.twilio_account_sid),
                CASE WHEN can_pay THEN 'active' ELSE 'past_due' END,
                price.number_type, price.iso_country, price.setup_price, price.monthly_price, price.currency, 'hosted',
                extract(day FROM today)::integer, today,
                CASE WHEN can_pay
                     THEN twilio_numbers.period_end(today, extract(day FROM today)::integer)::timestamp AT TIME ZONE 'UTC'
                     ELSE today::timestamp AT TIME ZONE 'UTC' END,
                CASE WHEN can_pay THEN NULL ELSE today::timestamp AT TIME ZONE 'UTC' END)
        RETURNING * INTO num;
        IF p_number IS NOT NULL THEN
            PERFORM twilio_numbers._apply_twilio(num.number_id, p_number);
        END IF;
        IF num.status = 'active' THEN
            INSERT INTO twilio_numbers.ledger (account_id, amount, kind, number_id, period_start, period_end, memo)
            SELECT num.account_id, -x.amount, x.kind, num.number_id, num.period_start, x.period_end, x.memo
            FROM (VALUES (num.setup_price, 'setup_fee', NULL::date, 'hosting setup fee ' || num.phone_number),
                         (num.monthly_price, 'monthly_fee', (num.next_billing_at AT TIME ZONE 'UTC')::date,
                          'first period ' || num.phone_number)) x(amount, kind, period_end, memo)
            WHERE x.amount > 0;
        END IF;
        UPDATE twilio_numbers.hosted_orders SET number_id = num.number_id, updated_at = now()
        WHERE order_sid = p_order_sid;
    END IF;
    RETURN new_status;
END $$;

-- What hosting a number costs: price_list's 'hosted' row for the country,
-- else the price of its type (local or toll_free) like a bought number.
CREATE FUNCTION _hosted_price(p_phone text,
    OUT iso_country text, OUT number_type text, OUT setup_price numeric, OUT monthly_price numeric,
    OUT currency text)
-- volatile: _customer_price may fetch Twilio's prices and cache them
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    iso_country := twilio_numbers._nanp_country(p_phone);
    number_type := CASE WHEN substr(p_phone, 3, 3) IN ('800', '833', '844', '855', '866', '877', '888')
                        THEN 'toll_free' ELSE 'local' END;
    SELECT p.setup_price, p.monthly_price, p.currency INTO setup_price, monthly_price, currency
    FROM twilio_numbers.price_list p
    WHERE p.iso_country = _hosted_price.iso_country AND p.number_type = 'hosted';
    IF NOT FOUND THEN
        SELECT p.setup_price, p.monthly_price, p.currency INTO setup_price, monthly_price, currency
        FROM twilio_numbers._customer_price(_hosted_price.iso_country, _hosted_price.number_type) p;
    END IF;
    IF monthly_price IS NULL THEN
        RAISE EXCEPTION 'no price for hosting % numbers', iso_country
            USING ERRCODE = '55000',
                  HINT = 'Add a twilio_numbers.price_list row with number_type ''hosted''.';
    END IF;
END $$;

-- 'US' or 'CA' for a +1 number (Canadian area codes).
CREATE FUNCTION _nanp_country(phone text) RETURNS text
AS 'MODULE_PATHNAME', 'tn_nanp_country_sql' LANGUAGE C IMMUTABLE STRICT;

-- Filing and cancelling an order (C: Twilio is called in the caller's
-- transaction, and an order filed in a transaction that rolls back is
-- canceled).
CREATE FUNCTION numbers_hosted_order(
    account_id           bigint,
    phone_number         text,
    contact_email        text,
    contact_phone_number text,
    address_sid          text,
    friendly_name        text DEFAULT NULL,
    sms_url              text DEFAULT NULL,
    sms_method           text DEFAULT NULL,
    status_callback      text DEFAULT NULL)
RETURNS hosted_orders
AS 'MODULE_PATHNAME', 'tn_numbers_hosted_order'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_hosted_order IS
  'File a hosted number order (host a number the customer owns elsewhere on Twilio for SMS); the worker follows it.';

CREATE FUNCTION numbers_hosted_cancel(account_id bigint, order_sid text) RETURNS hosted_orders
AS 'MODULE_PATHNAME', 'tn_numbers_hosted_cancel'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_hosted_cancel IS
  'Cancel a hosted number order while Twilio allows it (received, pending-verification, verified, pending-loa).';

-- Is any of these numbers taken here: live ('owned by account 7') or, with
-- p_orders, in a hosted order still on its way ('in order HR...')?  The
-- first found, if any (a purchase, a hosted order and an adoption ask
-- before anything is sent; the unique indexes are the last word).
CREATE FUNCTION _number_taken(p_phones text[], p_orders boolean)
RETURNS TABLE (phone_number text, taken text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    (SELECT o.phone_number, 'owned by account ' || o.account_id FROM twilio_numbers.live_numbers o
     WHERE o.phone_number = ANY (p_phones)
     UNION ALL
     SELECT h.phone_number, 'in order ' || h.order_sid FROM twilio_numbers.hosted_orders h
     WHERE p_orders AND h.phone_number = ANY (p_phones)
       AND h.status NOT IN ('completed', 'failed', 'canceled'))
    LIMIT 1;
END;

-- An order, locked (numbers_hosted_cancel).
CREATE FUNCTION _hosted_order_lock(p_order_sid text) RETURNS TABLE (account_id bigint, status text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT h.account_id, h.status FROM twilio_numbers.hosted_orders h WHERE h.order_sid = p_order_sid
    FOR UPDATE;
END;

-- An order's row, as numbers_hosted_cancel returns it.
CREATE FUNCTION _hosted_order(p_order_sid text) RETURNS SETOF hosted_orders
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM twilio_numbers.hosted_orders h WHERE h.order_sid = p_order_sid;
END;

-- The worker polled an order still on its way: how many polls in a row
-- found nothing changed (0 when its status just changed), for the backoff.
CREATE FUNCTION _hosted_order_polled(p_order_sid text) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.hosted_orders h
    SET polls = CASE WHEN h.status_changed_at = now() THEN 0 ELSE h.polls + 1 END
    WHERE h.order_sid = p_order_sid
    RETURNING h.polls;
END;
