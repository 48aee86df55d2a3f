--------------------------------------------------------------------------
-- After a lost reply: what Twilio has under the number is taken as what an
-- attempt created only if nothing else can have made it (the protocol that
-- creates numbers and hosted orders once, in C)
--------------------------------------------------------------------------

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

-- Twilio's clock minus ours, measured from the Date header of replies (this
-- backend's latest measurement, else any process's; NULL if never measured),
-- and how far a corrected Twilio time may still lie outside an attempt's
-- window (the measurement's uncertainty and 30 s; 5 minutes unmeasured).
CREATE FUNCTION _twilio_clock_offset() RETURNS interval
AS 'MODULE_PATHNAME', 'tn_twilio_clock_offset' LANGUAGE C STABLE;
CREATE FUNCTION _twilio_clock_margin() RETURNS interval
AS 'MODULE_PATHNAME', 'tn_twilio_clock_margin' LANGUAGE C STABLE;

-- Was p_created (a date_created, Twilio's clock) within an attempt that ran
-- from p_started to p_deadline (our clock)?  Twilio's time is brought to
-- ours by the measured offset first: servers drift, Twilio's clock is not ours.
CREATE FUNCTION _within_attempt(p_created timestamptz, p_started timestamptz, p_deadline timestamptz)
RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN coalesce(p_created - coalesce(twilio_numbers._twilio_clock_offset(), interval '0')
                BETWEEN p_started - twilio_numbers._twilio_clock_margin()
                    AND p_deadline + twilio_numbers._twilio_clock_margin(), false);

-- Could r, found at Twilio under p_phone after a lost reply, have been
-- created by an attempt that ran from p_started to p_deadline — and by no
-- one else?  Created in that time (on Twilio's clock, corrected), in that
-- account, configured as the attempt asked, and known to this database as
-- nothing else.
CREATE FUNCTION _created_by_attempt(r jsonb, p_phone text, p_account text, p_started timestamptz,
                                    p_deadline timestamptz, p_fields text[], p_md5 text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN r->>'phone_number' = p_phone
   AND coalesce(r->>'account_sid', p_account) = p_account
   AND twilio_numbers._within_attempt(twilio_numbers._twilio_time(r->>'date_created'), p_started, p_deadline)
   AND twilio_numbers._configured_as(r, p_fields, p_md5)
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.twilio_sid = r->>'sid')
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.hosted_orders h
                   WHERE h.order_sid = r->>'sid' OR h.incoming_phone_number_sid = r->>'sid')
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.purchase_attempts a WHERE a.twilio_sid = r->>'sid')
   AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                   WHERE q.twilio_sid = r->>'sid' AND q.status = 'pending');
