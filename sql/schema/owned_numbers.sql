--------------------------------------------------------------------------
-- Owned numbers: one row per number bought, hosted, transferred in or
-- adopted, and how a row follows what Twilio says
--------------------------------------------------------------------------

-- Owned numbers: one live row per phone number (live = not released).
CREATE TABLE owned_numbers (
    number_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id            bigint NOT NULL REFERENCES accounts,
    phone_number          text NOT NULL CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    twilio_sid            text CHECK (twilio_sid ~ '^PN[0-9a-fA-F]{32}$'),
    twilio_account_sid    text,
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'past_due', 'releasing', 'released')),
    number_type           text,
    iso_country           text,
    friendly_name         text,
    voice_url             text,
    voice_method          text,
    sms_url               text,
    sms_method            text,
    status_callback       text,
    trunk_sid             text,
    address_sid           text,
    bundle_sid            text,
    identity_sid          text,
    emergency_address_sid text,
    emergency_status      text,
    capabilities          text[] NOT NULL DEFAULT '{}',
    address_requirements  text,
    beta                  boolean,
    locality              text,
    region                text,
    setup_price           numeric(12,2) NOT NULL DEFAULT 0,
    monthly_price         numeric(12,2) NOT NULL,
    currency              text NOT NULL,
    origin                text NOT NULL DEFAULT 'purchased'
                          CHECK (origin IN ('purchased', 'hosted', 'transferred', 'adopted')),
    purchased_at          timestamptz NOT NULL DEFAULT now(),
    billing_anchor_day    smallint NOT NULL CHECK (billing_anchor_day BETWEEN 1 AND 31),
    period_start          date NOT NULL,
    next_billing_at       timestamptz NOT NULL,
    past_due_since        timestamptz,
    released_at           timestamptz,
    twilio                jsonb,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    messaging_service_sid text CHECK (messaging_service_sid ~ '^MG[0-9a-fA-F]{32}$'),
    emergency_address_status text
);
COMMENT ON TABLE owned_numbers IS
  'Numbers bought (or hosted, or transferred in) for customer accounts; released rows are kept as history.';
COMMENT ON COLUMN owned_numbers.period_start IS 'First day (UTC) of the period paid for.';
COMMENT ON COLUMN owned_numbers.next_billing_at IS 'End of the paid period (00:00 UTC) = when the next period is billed.';
COMMENT ON COLUMN owned_numbers.twilio IS 'The IncomingPhoneNumber resource as Twilio last returned it.';
COMMENT ON COLUMN owned_numbers.messaging_service_sid IS
  'The Messaging Service (MG...) whose sender pool holds the number (numbers_messaging_assign).';
COMMENT ON COLUMN owned_numbers.emergency_address_status IS
  'Twilio''s emergency_address_status: registered, unregistered, pending-registration, registration-failure, ...';
CREATE UNIQUE INDEX owned_numbers_live_phone ON owned_numbers (phone_number) WHERE status <> 'released';
CREATE UNIQUE INDEX owned_numbers_live_sid ON owned_numbers (twilio_sid) WHERE status <> 'released';
CREATE INDEX owned_numbers_account ON owned_numbers (account_id, number_id) WHERE status <> 'released';
-- what billing and "due next week" reports read, without visiting the table
CREATE INDEX owned_numbers_billing_due ON owned_numbers (next_billing_at, number_id)
    INCLUDE (monthly_price, account_id) WHERE status IN ('active', 'past_due');
SELECT pg_catalog.pg_extension_config_dump('owned_numbers', '');
SELECT pg_catalog.pg_extension_config_dump('owned_numbers_number_id_seq', '');

-- The live numbers: every row not released.  The one definition of "live"
-- (the partial indexes above spell it, as an index predicate must): code
-- and reports read live_numbers, never the condition again.
CREATE VIEW live_numbers AS
SELECT * FROM owned_numbers WHERE status <> 'released';
COMMENT ON VIEW live_numbers IS 'Numbers not released: active, past due or being released.';

-- Capabilities of a resource, whatever the case of its keys, in a fixed order.
CREATE FUNCTION _capabilities(caps jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(SELECT c FROM unnest(ARRAY['voice', 'sms', 'mms', 'fax']) WITH ORDINALITY AS u(c, o)
             WHERE EXISTS (SELECT 1 FROM jsonb_each(caps) e
                           WHERE lower(e.key) = u.c AND e.value = 'true'::jsonb)
             ORDER BY o);

-- Copy Twilio's view of a number (an IncomingPhoneNumber) into its row.
CREATE FUNCTION _apply_twilio(p_number_id bigint, r jsonb) RETURNS void
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

-- The configuration to send so that Twilio matches the row: Twilio's form
-- keys -> values ('' clears), only where Twilio (r) differs from the row.
CREATE FUNCTION _config_to_push(p_number_id bigint, r jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT coalesce(jsonb_object_agg(f.form_key, coalesce(f.ours, '')), '{}'::jsonb)
    FROM twilio_numbers.owned_numbers o,
         LATERAL (VALUES ('FriendlyName', 'friendly_name', o.friendly_name),
                         ('VoiceUrl', 'voice_url', o.voice_url),
                         ('VoiceMethod', 'voice_method', o.voice_method),
                         ('SmsUrl', 'sms_url', o.sms_url),
                         ('SmsMethod', 'sms_method', o.sms_method),
                         ('StatusCallback', 'status_callback', o.status_callback),
                         ('TrunkSid', 'trunk_sid', o.trunk_sid),
                         ('AddressSid', 'address_sid', o.address_sid),
                         ('BundleSid', 'bundle_sid', o.bundle_sid),
                         ('IdentitySid', 'identity_sid', o.identity_sid),
                         ('EmergencyAddressSid', 'emergency_address_sid', o.emergency_address_sid),
                         ('EmergencyStatus', 'emergency_status', o.emergency_status))
                 AS f(form_key, field, ours)
    WHERE o.number_id = p_number_id
      AND coalesce(f.ours, '') IS DISTINCT FROM coalesce(r->>f.field, '')
      -- a method Twilio defaults is no difference when we never chose one
      AND NOT (f.ours IS NULL AND f.field IN ('voice_method', 'sms_method', 'emergency_status'));
END;

-- Find a live number of an account, locked; the errors say what is wrong.
CREATE FUNCTION _live_number(p_account_id bigint, p_phone text) RETURNS owned_numbers
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.owned_numbers;
BEGIN
    IF p_phone IS NULL OR p_phone !~ '^\+[1-9][0-9]{6,14}$' THEN
        RAISE EXCEPTION 'phone_number must be an E.164 phone number, not "%"', coalesce(p_phone, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts a WHERE a.account_id = p_account_id) THEN
        RAISE EXCEPTION 'account % does not exist', p_account_id USING ERRCODE = 'P0002';
    END IF;
    SELECT * INTO r FROM twilio_numbers.live_numbers o
    WHERE o.phone_number = p_phone
    FOR UPDATE;
    IF NOT FOUND OR r.account_id <> p_account_id THEN
        IF FOUND OR NOT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o
                                WHERE o.phone_number = p_phone AND o.account_id = p_account_id) THEN
            RAISE EXCEPTION 'phone number % is not owned by account %', p_phone, p_account_id
                USING ERRCODE = 'P0002';
        END IF;
        RAISE EXCEPTION 'phone number % was already released', p_phone
            USING ERRCODE = '55000',
                  DETAIL = format('Account %s released it on %s.', p_account_id,
                                  (SELECT max(o.released_at) FROM twilio_numbers.owned_numbers o
                                   WHERE o.phone_number = p_phone AND o.account_id = p_account_id));
    END IF;
    IF r.status = 'releasing' THEN
        RAISE EXCEPTION 'phone number % is already being released', p_phone
            USING ERRCODE = '55000',
                  HINT = 'The release is queued; see twilio_numbers.queue.';
    END IF;
    RETURN r;
END $$;

-- A number's row, as the functions that change it return it.
CREATE FUNCTION _owned_number(p_number_id bigint) RETURNS SETOF owned_numbers
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id;
END;

-- The trunk a number is on (numbers_trunk_assign / _unassign, once Twilio has
-- done it); NULL: none.
CREATE FUNCTION _set_trunk(p_number_id bigint, p_trunk_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers o SET trunk_sid = p_trunk_sid, updated_at = now()
    WHERE o.number_id = p_number_id;
END;

-- What a number moving to another Twilio account takes along or must leave
-- first: its Messaging Service (which stays in its account), and the
-- address (only where Twilio requires one: a hosted order's stays behind)
-- and bundle it needs there, with its country and type.
CREATE FUNCTION _transfer_needs(p_number_id bigint)
RETURNS TABLE (messaging_service_sid text, address_sid text, bundle_sid text, iso_country text, number_type text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT o.messaging_service_sid,
           CASE WHEN coalesce(o.address_requirements, 'none') <> 'none' THEN o.address_sid END,
           o.bundle_sid, o.iso_country, o.number_type
    FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id;
END;

-- A number changes hands (numbers_transfer): ledger-neutral.
CREATE FUNCTION _transfer_record(p_number_id bigint, p_to_account_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers o SET account_id = p_to_account_id, origin = 'transferred',
        updated_at = now()
    WHERE o.number_id = p_number_id;
END;
