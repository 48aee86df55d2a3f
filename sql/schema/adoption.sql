--------------------------------------------------------------------------
-- Numbers at Twilio that this database did not buy: reported, never
-- touched, and adoptable by a customer account
--------------------------------------------------------------------------

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

-- Adopt a number that is at Twilio in a managed account (C: one look-up,
-- nothing else is sent to Twilio); a DBA's call, for moving an existing
-- business onto the extension.
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
