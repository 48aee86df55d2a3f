--------------------------------------------------------------------------
-- Customer addresses: the Twilio Addresses (2010-04-01) of each customer
-- account, in the Twilio (sub)account its numbers live in
--------------------------------------------------------------------------

-- One row per address created through numbers_address_create (or copied
-- into another subaccount by a transfer), with Twilio's verdicts.
CREATE TABLE addresses (
    address_sid        text PRIMARY KEY CHECK (address_sid ~ '^AD[0-9a-fA-F]{32}$'),
    account_id         bigint NOT NULL REFERENCES accounts,
    twilio_account_sid text NOT NULL CHECK (twilio_account_sid ~ '^AC[0-9a-fA-F]{32}$'),
    customer_name      text NOT NULL,
    street             text NOT NULL,
    street_secondary   text,
    city               text NOT NULL,
    region             text NOT NULL,
    postal_code        text NOT NULL,
    iso_country        text NOT NULL CHECK (iso_country ~ '^[A-Z]{2}$'),
    friendly_name      text,
    emergency_enabled  boolean NOT NULL DEFAULT false,
    validated          boolean,
    verified           boolean,
    copied_from        text,
    twilio             jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE addresses IS
  'Customer accounts'' Twilio Addresses (what regulated numbers need), with Twilio''s validated/verified flags.';
CREATE INDEX addresses_account ON addresses (account_id);
SELECT pg_catalog.pg_extension_config_dump('addresses', '');

-- Record what Twilio answered for an address (create, update, copy).
CREATE FUNCTION _address_seen(p_account_id bigint, r jsonb, p_copied_from text DEFAULT NULL)
RETURNS addresses
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a twilio_numbers.addresses;
BEGIN
    INSERT INTO twilio_numbers.addresses AS x
        (address_sid, account_id, twilio_account_sid, customer_name, street, street_secondary, city, region,
         postal_code, iso_country, friendly_name, emergency_enabled, validated, verified, copied_from, twilio)
    VALUES (r->>'sid', p_account_id, r->>'account_sid', r->>'customer_name', r->>'street',
            nullif(r->>'street_secondary', ''), r->>'city', r->>'region', r->>'postal_code', r->>'iso_country',
            r->>'friendly_name', coalesce((r->>'emergency_enabled')::boolean, false),
            (r->>'validated')::boolean, (r->>'verified')::boolean, p_copied_from, r)
    ON CONFLICT (address_sid) DO UPDATE SET
        customer_name = excluded.customer_name, street = excluded.street,
        street_secondary = excluded.street_secondary, city = excluded.city, region = excluded.region,
        postal_code = excluded.postal_code, friendly_name = excluded.friendly_name,
        emergency_enabled = excluded.emergency_enabled, validated = excluded.validated,
        verified = excluded.verified, twilio = excluded.twilio, updated_at = now()
    RETURNING * INTO a;
    RETURN a;
END $$;

-- The live numbers that name an address (Twilio refuses to delete it while
-- any do): what numbers_address_delete says before any request.
CREATE FUNCTION _address_dependents(p_address_sid text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(o.phone_number ORDER BY o.phone_number), '{}')
    FROM twilio_numbers.live_numbers o
    WHERE o.address_sid = p_address_sid
$$;

-- The Twilio account an address of the account lives in, its row locked
-- before a change or a delete; NULL when the account has no such address.
CREATE FUNCTION _address_lock(p_account_id bigint, p_address_sid text) RETURNS text
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.twilio_account_sid FROM twilio_numbers.addresses a
    WHERE a.address_sid = p_address_sid AND a.account_id = p_account_id
    FOR UPDATE
$$;

-- The account's addresses and the Twilio account each lives in, locked,
-- oldest first: what numbers_addresses_refresh reads again at Twilio.
CREATE FUNCTION _addresses_lock(p_account_id bigint)
RETURNS TABLE (address_sid text, twilio_account_sid text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.address_sid, a.twilio_account_sid FROM twilio_numbers.addresses a
    WHERE a.account_id = p_account_id
    ORDER BY a.created_at, a.address_sid
    FOR UPDATE
$$;

-- Forget an address (deleted at Twilio, or Twilio no longer has it); the
-- row it was.
CREATE FUNCTION _address_forget(p_address_sid text) RETURNS SETOF addresses
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM twilio_numbers.addresses a WHERE a.address_sid = p_address_sid
    RETURNING a.*
$$;

-- An address of p_account_id in Twilio account p_twilio_account_sid with
-- the content of p_address_sid (that address, a copy of it or the address
-- it was copied from), oldest first, or NULL: a transfer back and forth
-- uses it rather than copying again.
CREATE FUNCTION _address_copy_of(p_address_sid text, p_account_id bigint, p_twilio_account_sid text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.address_sid FROM twilio_numbers.addresses c
    WHERE c.account_id = p_account_id AND c.twilio_account_sid = p_twilio_account_sid
      AND (c.copied_from = p_address_sid OR c.address_sid = p_address_sid
           OR EXISTS (SELECT 1 FROM twilio_numbers.addresses s
                      WHERE s.address_sid = p_address_sid AND s.copied_from = c.address_sid))
    ORDER BY c.created_at
    LIMIT 1
$$;

-- Creating, changing and deleting addresses (C: Twilio is called in the
-- caller's transaction).
CREATE FUNCTION numbers_address_create(
    account_id        bigint,
    customer_name     text,
    street            text,
    city              text,
    region            text,
    postal_code       text,
    iso_country       text,
    friendly_name     text DEFAULT NULL,
    emergency_enabled boolean DEFAULT false,
    street_secondary  text DEFAULT NULL)
RETURNS addresses
AS 'MODULE_PATHNAME', 'tn_numbers_address_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_address_create IS
  'Create a Twilio Address for a customer account, in the Twilio (sub)account its numbers live in.';

CREATE FUNCTION numbers_address_update(
    account_id        bigint,
    address_sid       text,
    customer_name     text DEFAULT NULL,
    street            text DEFAULT NULL,
    city              text DEFAULT NULL,
    region            text DEFAULT NULL,
    postal_code       text DEFAULT NULL,
    friendly_name     text DEFAULT NULL,
    emergency_enabled boolean DEFAULT NULL,
    street_secondary  text DEFAULT NULL)
RETURNS addresses
AS 'MODULE_PATHNAME', 'tn_numbers_address_update'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_address_update IS
  'Change a customer''s Twilio Address (NULL leaves a field alone); Twilio validates it again.';

CREATE FUNCTION numbers_address_delete(account_id bigint, address_sid text) RETURNS addresses
AS 'MODULE_PATHNAME', 'tn_numbers_address_delete'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_address_delete IS
  'Delete a customer''s Twilio Address; refused before any request while numbers depend on it.';

-- Twilio's flags read again (C).
CREATE FUNCTION numbers_addresses_refresh(account_id bigint) RETURNS SETOF addresses
AS 'MODULE_PATHNAME', 'tn_numbers_addresses_refresh'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_addresses_refresh IS
  'Read a customer''s addresses from Twilio again (validated, verified); one Twilio no longer has is removed.';

-- A customer's addresses, with the numbers that depend on each.
CREATE FUNCTION numbers_addresses(account_id bigint)
RETURNS TABLE (address_sid text, customer_name text, street text, city text, region text, postal_code text,
               iso_country text, friendly_name text, emergency_enabled boolean, validated boolean,
               verified boolean, twilio_account_sid text, dependent_numbers text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.address_sid, a.customer_name, a.street, a.city, a.region, a.postal_code, a.iso_country,
           a.friendly_name, a.emergency_enabled, a.validated, a.verified, a.twilio_account_sid,
           twilio_numbers._address_dependents(a.address_sid)
    FROM twilio_numbers.addresses a
    WHERE a.account_id = numbers_addresses.account_id
    ORDER BY a.created_at, a.address_sid
$$;
COMMENT ON FUNCTION numbers_addresses IS
  'A customer account''s Twilio Addresses, with Twilio''s flags and the live numbers that depend on each.';
