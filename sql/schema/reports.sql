--------------------------------------------------------------------------
-- Reports for customers: filters, cost estimates, monthly statements, and
-- the numbers and monthly cost of each account
--------------------------------------------------------------------------

-- Owned numbers with the filters of Twilio's Active Numbers list (all
-- optional): friendly name, phone number pattern ('*' any digit, partial
-- numbers match), origin, beta, capabilities (all of them), trunk, status,
-- type, country.
CREATE FUNCTION numbers_owned(
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
    SELECT o.* FROM (SELECT * FROM twilio_numbers.live_numbers l WHERE numbers_owned.status IS NULL
                     UNION ALL
                     SELECT * FROM twilio_numbers.owned_numbers n WHERE n.status = numbers_owned.status) o
    WHERE (numbers_owned.account_id IS NULL OR o.account_id = numbers_owned.account_id)
      AND (numbers_owned.friendly_name IS NULL OR o.friendly_name = numbers_owned.friendly_name)
      AND (numbers_owned.phone_number IS NULL
           OR o.phone_number LIKE '%' || replace(numbers_owned.phone_number, '*', '_') || '%')
      AND (numbers_owned.origin IS NULL OR o.origin = numbers_owned.origin)
      AND (numbers_owned.beta IS NULL OR o.beta = numbers_owned.beta)
      AND (numbers_owned.capabilities IS NULL OR o.capabilities @> numbers_owned.capabilities)
      AND (numbers_owned.trunk_sid IS NULL OR o.trunk_sid = numbers_owned.trunk_sid)
      AND (numbers_owned.number_type IS NULL OR o.number_type = numbers_owned.number_type)
      AND (numbers_owned.iso_country IS NULL OR o.iso_country = upper(numbers_owned.iso_country))
    ORDER BY o.account_id, o.phone_number;
END $$;
COMMENT ON FUNCTION numbers_owned IS
  'Owned numbers filtered as Twilio''s Active Numbers list filters them: name, number pattern, origin, beta, capabilities, trunk, status.';

-- What an account will be charged, month by month, for the next N months
-- (UTC calendar months, starting with the next one): one row per month.
CREATE FUNCTION numbers_cost_estimate(account_id bigint, months integer DEFAULT 1)
RETURNS TABLE (month date, charges bigint, amount numeric, currency text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    first_month date := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date;
BEGIN
    IF months IS NULL OR months < 1 OR months > 120 THEN
        RAISE EXCEPTION 'months must be between 1 and 120, not %', coalesce(months::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts a WHERE a.account_id = numbers_cost_estimate.account_id) THEN
        RAISE EXCEPTION 'account % does not exist', numbers_cost_estimate.account_id USING ERRCODE = 'P0002';
    END IF;
    RETURN QUERY
    WITH m AS (
        SELECT (first_month + make_interval(months => i))::date AS month_start,
               (first_month + make_interval(months => i + 1))::date AS month_end
        FROM generate_series(0, months - 1) i),
    periods AS (
        -- every period a live number will be billed for, up to the last month asked
        SELECT o.monthly_price,
               twilio_numbers._period_start((o.next_billing_at AT TIME ZONE 'UTC')::date, o.billing_anchor_day, k) AS ps
        FROM twilio_numbers.owned_numbers o,
             generate_series(0, months + 14) k
        WHERE o.account_id = numbers_cost_estimate.account_id AND o.status IN ('active', 'past_due'))
    SELECT m.month_start, count(p.ps), coalesce(sum(p.monthly_price), 0),
           (SELECT a.currency FROM twilio_numbers.accounts a WHERE a.account_id = numbers_cost_estimate.account_id)
    FROM m LEFT JOIN periods p ON p.ps >= m.month_start AND p.ps < m.month_end
    GROUP BY m.month_start
    ORDER BY m.month_start;
END $$;
COMMENT ON FUNCTION numbers_cost_estimate IS
  'What an account will be charged in each of the next N calendar months (UTC) for the numbers it holds now.';

-- A monthly statement for a customer: the opening balance, every ledger
-- entry of the month (UTC) with its number, the closing balance.  Its totals
-- are the ledger's.
CREATE FUNCTION numbers_statement(account_id bigint, month date DEFAULT NULL)
RETURNS TABLE (line integer, entry_id bigint, entry_time timestamptz, kind text, phone_number text,
               period_start date, period_end date, memo text, amount numeric, balance numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m_start timestamptz := date_trunc('month', coalesce(month, (now() AT TIME ZONE 'UTC')::date))::timestamp
                           AT TIME ZONE 'UTC';
    m_end timestamptz := (date_trunc('month', coalesce(month, (now() AT TIME ZONE 'UTC')::date)) + interval '1 month')::timestamp
                         AT TIME ZONE 'UTC';
    opening numeric;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts a WHERE a.account_id = numbers_statement.account_id) THEN
        RAISE EXCEPTION 'account % does not exist', numbers_statement.account_id USING ERRCODE = 'P0002';
    END IF;
    SELECT coalesce(sum(l.amount), 0.00) INTO opening FROM twilio_numbers.ledger l
    WHERE l.account_id = numbers_statement.account_id AND l.created_at < m_start;
    RETURN QUERY
    WITH entries AS (
        SELECT l.entry_id, l.created_at, l.kind, o.phone_number, l.period_start, l.period_end, l.memo, l.amount
        FROM twilio_numbers.ledger l LEFT JOIN twilio_numbers.owned_numbers o USING (number_id)
        WHERE l.account_id = numbers_statement.account_id AND l.created_at >= m_start AND l.created_at < m_end)
    SELECT 0, NULL::bigint, m_start, 'opening balance', NULL::text, NULL::date, NULL::date, NULL::text,
           NULL::numeric, opening
    UNION ALL
    SELECT (row_number() OVER (ORDER BY e.created_at, e.entry_id))::integer, e.entry_id, e.created_at, e.kind,
           e.phone_number, e.period_start, e.period_end, e.memo, e.amount,
           opening + sum(e.amount) OVER (ORDER BY e.created_at, e.entry_id)
    FROM entries e
    UNION ALL
    SELECT 2147483647, NULL, m_end, 'closing balance', NULL, NULL, NULL, NULL,
           (SELECT coalesce(sum(e.amount), 0.00) FROM entries e),
           opening + (SELECT coalesce(sum(e.amount), 0.00) FROM entries e)
    ORDER BY 1;
END $$;
COMMENT ON FUNCTION numbers_statement IS
  'A customer''s monthly statement: opening balance, every ledger entry of the month with its number, closing balance.';

-- Owned numbers per account, live rows only.
CREATE VIEW account_numbers AS
SELECT o.account_id, a.name AS account_name, o.number_id, o.phone_number, o.friendly_name,
       o.number_type, o.iso_country, o.status, o.trunk_sid, o.capabilities,
       o.monthly_price AS monthly_fee, o.currency, o.purchased_at, o.next_billing_at, o.origin
FROM live_numbers o JOIN accounts a USING (account_id);
COMMENT ON VIEW account_numbers IS 'Live numbers per account with monthly fee and next billing date.';

-- Total monthly cost per account.
CREATE VIEW account_monthly_cost AS
SELECT a.account_id, a.name AS account_name, a.currency, a.balance,
       count(o.number_id) AS numbers,
       coalesce(sum(o.monthly_price), 0) AS monthly_cost,
       min(o.next_billing_at) AS next_billing_at
FROM accounts a
LEFT JOIN owned_numbers o ON o.account_id = a.account_id AND o.status IN ('active', 'past_due')
GROUP BY a.account_id;
COMMENT ON VIEW account_monthly_cost IS 'What each account pays per month for its numbers.';
