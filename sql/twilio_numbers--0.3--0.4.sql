-- twilio_numbers 0.3 -> 0.4 (ALTER EXTENSION twilio_numbers UPDATE TO '0.4')
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION twilio_numbers UPDATE TO '0.4'" to load this file. \quit

--------------------------------------------------------------------------
-- integrity: the view of every broken invariant
--------------------------------------------------------------------------
-- What tests, the soak and operators check after anything happened: an
-- account whose balance is not the sum of its ledger, a balance beyond its
-- credit limit, a (number, period) charged twice, an active number without a
-- paid period (a past-due one may have none: it is created unpaid when a
-- hosted order completes for an account that cannot pay).  Set-based, read-only; cheap enough to run after every test and
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
SELECT 'active_number_without_period', o.account_id, o.number_id,
       format('%s: period from %s, next billing at %s', o.phone_number, o.period_start, o.next_billing_at)
FROM owned_numbers o
WHERE o.status = 'active'
  AND (o.next_billing_at IS NULL OR o.next_billing_at <= o.period_start::timestamp AT TIME ZONE 'UTC');
COMMENT ON VIEW integrity IS
  'Every broken invariant (balance = sum of the ledger, balance within its credit limit, one charge per number and period, a paid period for every active number), one row each: empty when all is well.';

-- ======================================================================
-- regulatory: customers' addresses, what a country requires, bundles
-- ======================================================================

-- the worker follows bundles too
ALTER TABLE work_queue DROP CONSTRAINT work_queue_kind_check;
ALTER TABLE work_queue ADD CONSTRAINT work_queue_kind_check
    CHECK (kind IN ('release', 'compensate', 'resync', 'hosted_poll', 'hosted_cancel', 'bundle_poll'));

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
    FROM twilio_numbers.owned_numbers o
    WHERE o.address_sid = p_address_sid AND o.status <> 'released'
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

--------------------------------------------------------------------------
-- Regulatory compliance (numbers v2): what a country requires, cached like
-- prices; customers' bundles, followed by the worker like hosted orders
--------------------------------------------------------------------------

-- Twilio's Regulations for a country, number type and end-user type, and
-- the address_requirements of that country's numbers of that type, as last
-- fetched (numbers_requirements reads them; refetched after pricing_ttl_s).
CREATE TABLE regulations_cache (
    iso_country          text NOT NULL,
    number_type          text NOT NULL,
    end_user_type        text NOT NULL,
    regulations          jsonb NOT NULL,
    address_requirements text,
    fetched_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iso_country, number_type, end_user_type)
);
COMMENT ON TABLE regulations_cache IS
  'Twilio''s Regulations per country, number type and end-user type, as last fetched; a cache, refilled on demand.';

-- The Regulations (C: fetched from Twilio when the cache is older than
-- pricing_ttl_s); end_user_type '' means both.
CREATE FUNCTION _regulations(iso_country text, number_type text, end_user_type text)
RETURNS regulations_cache
AS 'MODULE_PATHNAME', 'tn_regulations' LANGUAGE C VOLATILE STRICT;

-- What a country requires for a number type and end-user type, one row per
-- requirement, as a reseller shows it to its customer: the address
-- (none, any, local, foreign), whether a bundle is needed, the end user's
-- fields and the documents Twilio accepts.  A regulation that names an end
-- user needs a bundle.
CREATE FUNCTION numbers_requirements(iso_country text, number_type text DEFAULT 'local',
                                     end_user_type text DEFAULT 'business')
RETURNS TABLE (requirement text, name text, value text, description text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c twilio_numbers.regulations_cache;
BEGIN
    IF iso_country IS NULL OR iso_country !~ '^[A-Za-z]{2}$' THEN
        RAISE EXCEPTION 'iso_country must be a two-letter ISO 3166 code, not %', coalesce(quote_literal(iso_country), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF number_type IS NULL OR number_type NOT IN ('local', 'mobile', 'toll_free', 'national') THEN
        RAISE EXCEPTION 'number_type must be local, mobile, toll_free or national, not %',
                        coalesce(quote_literal(number_type), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF end_user_type IS NULL OR end_user_type NOT IN ('individual', 'business') THEN
        RAISE EXCEPTION 'end_user_type must be individual or business, not %', coalesce(quote_literal(end_user_type), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    c := twilio_numbers._regulations(upper(iso_country), number_type, end_user_type);
    RETURN QUERY
    SELECT 'address', 'Address', coalesce(c.address_requirements, 'unknown'),
           CASE coalesce(c.address_requirements, 'unknown')
               WHEN 'none' THEN 'No address is needed.'
               WHEN 'any' THEN 'An address anywhere in the world.'
               WHEN 'local' THEN 'An address in the number''s country.'
               WHEN 'foreign' THEN 'An address outside the number''s country.'
               ELSE 'Twilio had no number of this type to show its address requirement.' END
    UNION ALL
    SELECT 'bundle', coalesce(r->>'friendly_name', 'Regulatory bundle'),
           CASE WHEN jsonb_array_length(coalesce(r->'requirements'->'end_user', '[]')) > 0
                THEN 'required' ELSE 'not required' END,
           CASE WHEN r IS NULL THEN 'Twilio lists no regulation for these numbers.'
                ELSE 'Regulation ' || (r->>'sid') END
    FROM (SELECT jsonb_array_elements(CASE WHEN jsonb_array_length(c.regulations) = 0 THEN '[null]'
                                           ELSE c.regulations END) r) x
    UNION ALL
    SELECT 'end_user_field', e->>'name', f->>'machine_name', f->>'friendly_name'
    FROM jsonb_array_elements(c.regulations) r,
         jsonb_array_elements(coalesce(r->'requirements'->'end_user', '[]')) e,
         jsonb_array_elements(coalesce(e->'detailed_fields', '[]')) f
    UNION ALL
    SELECT 'document', d->>'name', a->>'type', coalesce(a->>'name', '') ||
           CASE WHEN d->>'description' IS NULL THEN '' ELSE ': ' || (d->>'description') END
    FROM jsonb_array_elements(c.regulations) r,
         jsonb_array_elements(coalesce(r->'requirements'->'supporting_document', '[]')) g,
         jsonb_array_elements(CASE jsonb_typeof(g) WHEN 'array' THEN g ELSE jsonb_build_array(g) END) d,
         jsonb_array_elements(coalesce(d->'accepted_documents', '[]')) a;
END $$;
COMMENT ON FUNCTION numbers_requirements IS
  'What Twilio''s Regulations require for a country, number type and end-user type: address, bundle, end-user fields, documents.';

-- Does a country's number type need a bundle (any regulation for it names
-- an end user)?  What a purchase asks before it picks the customer's bundle.
CREATE FUNCTION _bundle_required(p_iso_country text, p_number_type text) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1
                   FROM jsonb_array_elements((twilio_numbers._regulations(p_iso_country, p_number_type, '')).regulations) r
                   WHERE jsonb_array_length(coalesce(r->'requirements'->'end_user', '[]')) > 0)
$$;

-- One row per bundle a customer registered (its creation with documents
-- stays at Twilio), with the status Twilio last gave it.
CREATE TABLE bundles (
    bundle_sid         text PRIMARY KEY CHECK (bundle_sid ~ '^BU[0-9a-fA-F]{32}$'),
    account_id         bigint NOT NULL REFERENCES accounts,
    twilio_account_sid text NOT NULL CHECK (twilio_account_sid ~ '^AC[0-9a-fA-F]{32}$'),
    regulation_sid     text,
    iso_country        text,
    number_type        text,
    end_user_type      text,
    friendly_name      text,
    status             text NOT NULL
                       CHECK (status IN ('draft', 'pending-review', 'in-review', 'twilio-rejected',
                                         'twilio-approved', 'provisionally-approved', 'deleted')),
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    valid_until        timestamptz,
    cloned_from        text,
    polls              integer NOT NULL DEFAULT 0,
    twilio             jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE bundles IS
  'Customers'' regulatory bundles (Twilio numbers v2) and their current status; history in bundle_history.';
CREATE INDEX bundles_account ON bundles (account_id, iso_country, number_type);
SELECT pg_catalog.pg_extension_config_dump('bundles', '');

CREATE TABLE bundle_history (
    bundle_sid text NOT NULL REFERENCES bundles,
    status     text NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE bundle_history IS 'Every status a bundle was seen in, in order.';
CREATE INDEX bundle_history_bundle ON bundle_history (bundle_sid, seen_at);
SELECT pg_catalog.pg_extension_config_dump('bundle_history', '');

-- Statuses in which Twilio's review is over: the worker stops following.
CREATE FUNCTION _bundle_settled(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT status IN ('twilio-approved', 'twilio-rejected', 'deleted') $$;

-- Record a bundle Twilio showed us (r: the Bundle resource, or NULL when it
-- is gone; reg: its Regulation, on first sight).  A new status goes to the
-- history with a NOTIFY twilio_numbers_bundle; a bundle still under review
-- is followed by a bundle_poll job.  Returns the status now.
CREATE FUNCTION _bundle_seen(p_account_id bigint, p_bundle_sid text, r jsonb, reg jsonb DEFAULT NULL,
                             p_cloned_from text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b twilio_numbers.bundles;
    new_status text := CASE WHEN r IS NULL THEN 'deleted' ELSE r->>'status' END;
BEGIN
    SELECT * INTO b FROM twilio_numbers.bundles WHERE bundle_sid = p_bundle_sid FOR UPDATE;
    IF NOT FOUND THEN
        IF r IS NULL THEN
            RETURN NULL;
        END IF;
        INSERT INTO twilio_numbers.bundles
            (bundle_sid, account_id, twilio_account_sid, regulation_sid, iso_country, number_type, end_user_type,
             friendly_name, status, valid_until, cloned_from, twilio)
        VALUES (p_bundle_sid, p_account_id, r->>'account_sid', r->>'regulation_sid', reg->>'iso_country',
                replace(reg->>'number_type', ' ', '_'), reg->>'end_user_type', r->>'friendly_name', new_status,
                (r->>'valid_until')::timestamptz, p_cloned_from, r)
        RETURNING * INTO b;
    ELSIF new_status IS DISTINCT FROM b.status THEN
        UPDATE twilio_numbers.bundles SET status = new_status, status_changed_at = now(),
               valid_until = CASE WHEN r IS NULL THEN valid_until ELSE (r->>'valid_until')::timestamptz END,
               friendly_name = coalesce(r->>'friendly_name', friendly_name), twilio = coalesce(r, twilio),
               updated_at = now()
        WHERE bundle_sid = p_bundle_sid;
    ELSE
        RETURN new_status;
    END IF;
    INSERT INTO twilio_numbers.bundle_history (bundle_sid, status) VALUES (p_bundle_sid, new_status);
    PERFORM pg_notify('twilio_numbers_bundle',
                      json_build_object('bundle_sid', p_bundle_sid, 'account_id', b.account_id,
                                        'status', new_status)::text);
    IF NOT twilio_numbers._bundle_settled(new_status)
       AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                       WHERE q.kind = 'bundle_poll' AND q.status = 'pending'
                         AND q.payload->>'bundle_sid' = p_bundle_sid) THEN
        INSERT INTO twilio_numbers.work_queue (kind, payload, next_attempt_at)
        VALUES ('bundle_poll', jsonb_build_object('bundle_sid', p_bundle_sid),
                now() + current_setting('twilio_numbers.hosted_poll_ms')::interval);
        PERFORM twilio_numbers._wake_worker_at_commit();
    END IF;
    RETURN new_status;
END $$;

-- The customer's approved bundle for a country and number type in its
-- Twilio account (twilio-approved before provisionally-approved, oldest
-- first), or NULL.
CREATE FUNCTION _bundle_pick(p_account_id bigint, p_twilio_account_sid text, p_iso_country text,
                             p_number_type text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.bundle_sid FROM twilio_numbers.bundles b
    WHERE b.account_id = p_account_id AND b.twilio_account_sid = p_twilio_account_sid
      AND b.iso_country = p_iso_country AND b.number_type = p_number_type
      AND b.status IN ('twilio-approved', 'provisionally-approved')
    ORDER BY b.status = 'twilio-approved' DESC, b.created_at, b.bundle_sid
    LIMIT 1
$$;

-- What the customer has for a country and number type, for the refusal's
-- detail: "BU… (in-review), BU… (twilio-rejected)", or NULL.
CREATE FUNCTION _bundles_described(p_account_id bigint, p_iso_country text, p_number_type text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(b.bundle_sid || ' (' || b.status || ')', ', ' ORDER BY b.created_at, b.bundle_sid)
    FROM twilio_numbers.bundles b
    WHERE b.account_id = p_account_id AND b.iso_country = p_iso_country AND b.number_type = p_number_type
$$;

-- Registering a bundle (C: its status and regulation are read from Twilio).
CREATE FUNCTION numbers_bundle_register(account_id bigint, bundle_sid text) RETURNS bundles
AS 'MODULE_PATHNAME', 'tn_numbers_bundle_register'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_bundle_register IS
  'Register a customer''s regulatory bundle (created at Twilio) by SID; the worker follows its status.';

-- application roles get the new functions and tables
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
    -- customers' addresses, what a country requires, their bundles
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'twilio_numbers.numbers_address_create, twilio_numbers.numbers_address_update, '
        'twilio_numbers.numbers_address_delete, twilio_numbers.numbers_addresses, '
        'twilio_numbers.numbers_addresses_refresh, '
        'twilio_numbers.numbers_requirements, twilio_numbers.numbers_bundle_register TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.addresses, twilio_numbers.bundles, '
        'twilio_numbers.bundle_history TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.accounts, twilio_numbers.owned_numbers, '
        'twilio_numbers.ledger, twilio_numbers.price_list, twilio_numbers.account_numbers, '
        'twilio_numbers.account_monthly_cost, twilio_numbers.hosted_orders, '
        'twilio_numbers.hosted_order_history TO %s', role);
    -- which Twilio account a customer's numbers live in is the DBA's
    -- decision (numbers_map_account), never the application's
    EXECUTE format('GRANT INSERT (name, currency, credit_limit, status), '
        'UPDATE (name, credit_limit, status) ON twilio_numbers.accounts TO %s', role);
END $$;

REVOKE ALL ON FUNCTION _address_seen, _address_dependents, numbers_address_create, numbers_address_update,
    numbers_address_delete, numbers_addresses, numbers_addresses_refresh, _regulations, numbers_requirements, _bundle_required,
    _bundle_settled, _bundle_seen, _bundle_pick, _bundles_described, numbers_bundle_register FROM PUBLIC;

--------------------------------------------------------------------------
-- Scale: the cluster's request budget, seen from SQL
--------------------------------------------------------------------------
CREATE FUNCTION request_budget_info(
    OUT max_concurrent_requests integer, OUT effective integer, OUT in_flight integer, OUT waiting integer,
    OUT peak_in_flight integer, OUT requests bigint, OUT waits bigint, OUT throttled bigint,
    OUT last_throttled_at timestamptz)
AS 'MODULE_PATHNAME', 'tn_request_budget' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION request_budget_info IS
  'The cluster''s budget of requests in flight to Twilio: the setting, the adaptive limit in force, slots taken and waited for.';
CREATE VIEW request_budget AS SELECT * FROM request_budget_info();
COMMENT ON VIEW request_budget IS
  'Requests in flight to Twilio across the cluster against max_concurrent_requests, the limit a 429 lowered it to, waits and 429s.';
REVOKE ALL ON FUNCTION request_budget_info() FROM PUBLIC;

CREATE OR REPLACE FUNCTION grant_reporting(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA twilio_numbers TO %s', role);
    -- the views over shared memory call these read-only functions
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.call_log_entries, '
        'twilio_numbers.inflight_entries, twilio_numbers.worker_info, twilio_numbers.request_budget_info, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund, '
        'twilio_numbers._capabilities TO %s', role);
END $$;

-- Operations: the incarnation that acts at Twilio
--------------------------------------------------------------------------
-- The one incarnation allowed to act at Twilio: the cluster's system
-- identifier, WAL timeline and database (the epoch of purchase_attempts).
-- pg_dump carries this row; a database where the epoch now differs — a dump
-- restored elsewhere, a physical backup recovered to a new timeline, a
-- clone — is a held copy: nothing but GETs reaches Twilio from it until a
-- DBA makes it live (numbers_make_live) or detaches it for good
-- (numbers_detach).  state: 'live'; 'restoring' (created by a restore, whose
-- own row replaces it; a DBA makes it live if none comes); 'detached'.
CREATE TABLE incarnation (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    state             text NOT NULL CHECK (state IN ('live', 'restoring', 'detached')),
    system_identifier text NOT NULL,
    timeline          integer NOT NULL,
    database_oid      oid NOT NULL,
    database_name     text NOT NULL,
    since             timestamptz NOT NULL DEFAULT now(),
    history           jsonb NOT NULL DEFAULT '[]'
);
COMMENT ON TABLE incarnation IS
  'The incarnation (system identifier, timeline, database) allowed to act at Twilio; any other is a held copy.';

-- One row: a row inserted (by CREATE EXTENSION, or by a restore's COPY,
-- which brings the original's) replaces the one there.
CREATE FUNCTION _incarnation_replace() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM twilio_numbers.incarnation;
    RETURN NEW;
END $$;
CREATE TRIGGER incarnation_one_row BEFORE INSERT ON incarnation
FOR EACH ROW EXECUTE FUNCTION _incarnation_replace();
SELECT pg_catalog.pg_extension_config_dump('incarnation', '');

-- CREATE EXTENSION makes this database live, unless it runs inside a
-- restore (pg_dump's and pg_restore's scripts turn row_security off): then it waits,
-- held, for the dumped row.
INSERT INTO incarnation (state, system_identifier, timeline, database_oid, database_name)
SELECT CASE WHEN current_setting('row_security') = 'off' THEN 'restoring' ELSE 'live' END,
       e[1], e[2]::integer, e[3]::oid, current_database()
FROM string_to_array(_epoch(), ':') e;

-- live, held or detached, now.  A promoted standby (same system and
-- database, a later timeline) follows its promotion when p_follow
-- (twilio_numbers.follow_promotion): it becomes the live incarnation, and
-- the attempts it received from the old primary count as its own, settled
-- as after a crash restart.
CREATE FUNCTION _incarnation_status(p_follow boolean) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.incarnation;
    e text[] := string_to_array(twilio_numbers._epoch(), ':');
    old_epoch text;
BEGIN
    SELECT * INTO r FROM twilio_numbers.incarnation;
    IF NOT FOUND OR r.state = 'restoring' THEN
        RETURN 'held';
    ELSIF r.state = 'detached' THEN
        RETURN 'detached';
    ELSIF r.system_identifier <> e[1] OR r.database_oid <> e[3]::oid THEN
        RETURN 'held';
    ELSIF r.timeline = e[2]::integer THEN
        RETURN 'live';
    ELSIF NOT p_follow OR e[2]::integer < r.timeline OR pg_is_in_recovery() THEN
        RETURN 'held';
    END IF;
    old_epoch := format('%s:%s:%s', r.system_identifier, r.timeline, r.database_oid);
    UPDATE twilio_numbers.incarnation
    SET timeline = e[2]::integer, since = now(),
        history = history || jsonb_build_object('epoch', old_epoch, 'until', now(),
                                                'then', 'followed a promotion (follow_promotion)')
    WHERE timeline = r.timeline;
    IF FOUND THEN
        UPDATE twilio_numbers.purchase_attempts SET recorded_in = twilio_numbers._epoch()
        WHERE state = 'open' AND recorded_in = old_epoch;
        RAISE LOG 'twilio_numbers: database "%" follows its promotion from timeline % to %; the attempts of timeline % are settled as after a crash restart',
            current_database(), r.timeline, e[2], r.timeline;
    END IF;
    RETURN 'live';
END $$;

-- What the database is, and what it was live as (DBA, reporting role).
CREATE FUNCTION numbers_incarnation(
    OUT status text, OUT state text,
    OUT live_system_identifier text, OUT live_timeline integer, OUT live_database_oid oid,
    OUT live_database_name text, OUT live_since timestamptz,
    OUT this_system_identifier text, OUT this_timeline integer, OUT this_database_oid oid,
    OUT this_database_name text, OUT history jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT CASE WHEN i.state = 'detached' THEN 'detached'
            WHEN i.state = 'live' AND i.system_identifier = e[1] AND i.timeline = e[2]::integer
                 AND i.database_oid = e[3]::oid THEN 'live'
            WHEN i.state = 'live' AND i.system_identifier = e[1] AND i.database_oid = e[3]::oid
                 AND i.timeline < e[2]::integer AND current_setting('twilio_numbers.follow_promotion', true) = 'on'
                 THEN 'live (following a promotion)'
            ELSE 'held copy' END,
       i.state, i.system_identifier, i.timeline, i.database_oid, i.database_name, i.since,
       e[1], e[2]::integer, e[3]::oid, current_database(), i.history
FROM string_to_array(twilio_numbers._epoch(), ':') e
LEFT JOIN twilio_numbers.incarnation i ON true
$$;
COMMENT ON FUNCTION numbers_incarnation IS
  'Whether this database is the live incarnation at Twilio, a held copy or detached; what it was live as and what it is now.';

-- A DBA makes this copy the incarnation that acts at Twilio: the queue runs,
-- reconcile acts, billing runs.  The attempts recorded by the original stay
-- another epoch's: what they may have bought is reported, never released.
CREATE FUNCTION numbers_make_live() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.incarnation;
    e text[] := string_to_array(twilio_numbers._epoch(), ':');
    was text;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'a standby server cannot be made live'
            USING ERRCODE = '25006', HINT = 'Run it on the primary after the promotion.';
    END IF;
    SELECT * INTO r FROM twilio_numbers.incarnation FOR UPDATE;
    IF r.state = 'detached' THEN
        RAISE EXCEPTION 'this database was detached from Twilio for good'
            USING ERRCODE = 'TN020',
                  DETAIL = format('numbers_detach() detached it at %s.', r.since),
                  HINT = 'A detached copy never acts at Twilio again; restore a new copy to make one live.';
    END IF;
    IF FOUND AND r.state = 'live' AND r.system_identifier = e[1] AND r.timeline = e[2]::integer
       AND r.database_oid = e[3]::oid THEN
        RETURN format('already live as system %s, timeline %s, database %s', e[1], e[2], current_database());
    END IF;
    was := CASE WHEN FOUND THEN format('%s:%s:%s (%s, %s)', r.system_identifier, r.timeline, r.database_oid,
                                       r.database_name, r.state) END;
    INSERT INTO twilio_numbers.incarnation (state, system_identifier, timeline, database_oid, database_name, history)
    VALUES ('live', e[1], e[2]::integer, e[3]::oid, current_database(),
            coalesce(r.history, '[]') || jsonb_build_object('epoch', was, 'until', now(),
                                                            'then', 'made live by numbers_make_live()'));
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN format('live as system %s, timeline %s, database %s (was %s)', e[1], e[2], current_database(),
                  coalesce(was, 'nothing'));
END $$;
COMMENT ON FUNCTION numbers_make_live IS
  'DBA: make this copy of the database the one that acts at Twilio (the original must be stopped or detached first).';

-- A DBA detaches a held copy from Twilio for good (staging, a restore
-- drill): its rows stay as they were copied, marked by this row; nothing
-- but GETs ever reaches Twilio from it and its workers stay idle.
CREATE FUNCTION numbers_detach() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.incarnation;
    status text := twilio_numbers._incarnation_status(false);
BEGIN
    IF status = 'live' THEN
        RAISE EXCEPTION 'this database is the live incarnation at Twilio; it cannot be detached'
            USING ERRCODE = '55000',
                  HINT = 'Detach held copies only: numbers_incarnation() says which this is.';
    END IF;
    SELECT * INTO r FROM twilio_numbers.incarnation FOR UPDATE;
    UPDATE twilio_numbers.incarnation
    SET state = 'detached', since = now(),
        history = history || jsonb_build_object('epoch', format('%s:%s:%s', r.system_identifier, r.timeline,
                                                                r.database_oid),
                                                'until', now(), 'then', 'detached by numbers_detach()');
    RETURN format('detached: database %s never acts at Twilio again; its rows are the copy of %s (%s)',
                  current_database(), r.database_name, r.system_identifier);
END $$;
COMMENT ON FUNCTION numbers_detach IS
  'DBA: detach a held copy from Twilio for good (its rows kept, marked by the incarnation row).';

REVOKE ALL ON FUNCTION _incarnation_replace(), _incarnation_status(boolean), numbers_incarnation(), numbers_make_live(), numbers_detach() FROM PUBLIC;

-- ---- Ownership and money: Twilio's clock, measured from replies' Date header ----
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

CREATE OR REPLACE FUNCTION _created_by_attempt(r jsonb, p_phone text, p_account text, p_started timestamptz,
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

-- Twilio's clock against ours (twclock.c): the latest measurement from a
-- reply's Date header, and whether a skew beyond clock_skew_warning_ms is on.
CREATE FUNCTION twilio_clock_info(
    OUT skew           interval,
    OUT skew_ms        double precision,
    OUT uncertainty_ms double precision,
    OUT measured_at    timestamptz,
    OUT measured_by    integer,
    OUT samples        bigint,
    OUT skewed         boolean,
    OUT skewed_since   timestamptz,
    OUT episodes       bigint)
AS 'MODULE_PATHNAME', 'tn_twilio_clock_info'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION twilio_clock_info IS
  'Twilio''s clock minus this server''s, as last measured from a reply''s Date header; skew episodes.';

CREATE VIEW twilio_clock AS
SELECT skew, skew_ms, uncertainty_ms, measured_at, measured_by, samples, skewed, skewed_since, episodes,
       current_setting('twilio_numbers.clock_skew_warning_ms', true) AS warning_threshold
FROM twilio_clock_info();
COMMENT ON VIEW twilio_clock IS
  'Twilio''s clock minus this server''s (skew > 0: Twilio ahead), measured from replies; skewed: beyond clock_skew_warning_ms.';
REVOKE ALL ON FUNCTION _twilio_clock_offset(), _twilio_clock_margin(), _within_attempt(timestamptz, timestamptz, timestamptz), twilio_clock_info() FROM PUBLIC;
CREATE OR REPLACE FUNCTION _reconcile(p_seen bigint[], p_listed text[], p_failed jsonb, p_attempts bigint[],
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
                       -- (a request of it that got no reply may land late: even
                       -- an attempt that has a SID may have made this one too)
                       OR (a.phone_number = t.phone AND a.twilio_account_sid = t.account_sid
                           AND twilio_numbers._within_attempt(t.created, a.started_at, a.deadline)
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
                    -- its attempt's undo is pending (and watching for it)
                    WHEN EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                                 WHERE q.attempt_id = u.attempt_id AND q.status = 'pending') THEN 'queued'
                    -- let go means let go: a number of ours that vanished or was
                    -- released and came back is someone else's now
                    WHEN u.released_here THEN 'let_go'
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
        FROM judged j WHERE j.verdict IN ('unproven', 'unmanaged', 'let_go')
        ON CONFLICT (twilio_sid) DO UPDATE
        SET last_seen_at = now(), friendly_name = excluded.friendly_name, resource = excluded.resource,
            twilio_account_sid = excluded.twilio_account_sid, in_main_account = excluded.in_main_account
        RETURNING twilio_sid, first_seen_at = now() AS first_seen)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, detail, action)
    SELECT CASE j.verdict WHEN 'unproven' THEN 'unproven_after_failover'
                          WHEN 'unmanaged' THEN 'unmanaged_at_twilio'
                          WHEN 'let_go' THEN 'unmanaged_at_twilio'
                          ELSE 'orphan_at_twilio' END,
           j.phone, j.sid,
           jsonb_strip_nulls(jsonb_build_object('account_sid', j.account_sid, 'attempt_id', j.attempt_id,
                                                'recorded_in', j.recorded_in,
                                                'friendly_name', j.r->>'friendly_name',
                                                'let_go_number_id',
                                                CASE WHEN j.verdict = 'let_go' THEN
                                                    (SELECT max(o.number_id) FROM twilio_numbers.owned_numbers o
                                                     WHERE o.twilio_sid = j.sid) END)),
           CASE j.verdict WHEN 'queued' THEN 'none: its release is already queued'
                          WHEN 'ours' THEN 'release queued'
                          WHEN 'unproven' THEN 'none: reported, never released (attempted before a failover or restore)'
                          WHEN 'let_go' THEN 'none: let go here (vanished or released) and back at Twilio; '
                                             'reported, never touched; adoptable'
                          ELSE 'none: not bought here; reported, never touched' END
    FROM judged j
    WHERE j.verdict = 'ours'
       -- one row per finding episode: an undo already queued is reported
       -- once, not at every pass while it runs
       OR (j.verdict = 'queued'
           AND NOT EXISTS (SELECT 1 FROM twilio_numbers.drift d
                           WHERE d.twilio_sid = j.sid AND d.finding = 'orphan_at_twilio'
                             AND d.found_at >= (SELECT min(q.created_at) FROM twilio_numbers.work_queue q
                                                WHERE q.status = 'pending'
                                                  AND (q.twilio_sid = j.sid OR q.attempt_id = j.attempt_id))))
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
    -- (no SID recorded: its POST may have got no reply, and the job watches
    -- until the attempt's deadline or until it has found what that POST made)
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    SELECT 'compensate', a.phone_number, a.twilio_sid, a.twilio_account_sid,
           CASE WHEN a.twilio_sid IS NULL THEN '{"reason": "reconcile", "unresolved": 1}'::jsonb
                ELSE '{"reason": "reconcile"}'::jsonb END,
           a.attempt_id
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
CREATE OR REPLACE FUNCTION grant_reporting(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA twilio_numbers TO %s', role);
    -- the views over shared memory call these read-only functions
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.call_log_entries, '
        'twilio_numbers.inflight_entries, twilio_numbers.worker_info, twilio_numbers.request_budget_info, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund, '
        'twilio_numbers._capabilities, twilio_numbers.twilio_clock_info TO %s', role);
END $$;

-- an attempt records what it made (a request that landed late included)
ALTER TABLE purchase_attempts
    ADD COLUMN created_sids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN resources_made integer GENERATED ALWAYS AS (cardinality(created_sids)) STORED;
COMMENT ON COLUMN purchase_attempts.created_sids IS
  'What the attempt created at Twilio: the SID committed, or every resource its compensation removed (a request that landed late included).';
COMMENT ON COLUMN purchase_attempts.resources_made IS 'How many resources the attempt created at Twilio.';
UPDATE purchase_attempts SET created_sids = ARRAY[twilio_sid]
WHERE outcome IN ('committed', 'compensated') AND twilio_sid IS NOT NULL;
-- An attempt closed as committed or compensated made what its twilio_sid
-- names (whoever closes it: the recorder, a job, reconcile).
CREATE FUNCTION _attempt_closed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.state = 'closed' AND OLD.state = 'open' AND NEW.outcome IN ('committed', 'compensated')
       AND NEW.twilio_sid IS NOT NULL AND NOT NEW.twilio_sid = ANY (NEW.created_sids) THEN
        NEW.created_sids := NEW.created_sids || NEW.twilio_sid;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER purchase_attempts_closed BEFORE UPDATE ON purchase_attempts
    FOR EACH ROW EXECUTE FUNCTION _attempt_closed();
REVOKE ALL ON FUNCTION _attempt_closed() FROM PUBLIC;

-- the money rules against the application role: history, limits, closing
-- Every change of an account's money rules — its credit limit and its status
-- — with who made it and when (the trigger below writes it; nobody else can).
CREATE TABLE account_changes (
    change_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text NOT NULL,
    field       text NOT NULL CHECK (field IN ('credit_limit', 'status')),
    old_value   text,
    new_value   text
);
COMMENT ON TABLE account_changes IS
  'History of accounts.credit_limit and accounts.status: who (the role acting), when, old and new value.';
CREATE INDEX account_changes_account ON account_changes (account_id, change_id);
SELECT pg_catalog.pg_extension_config_dump('account_changes', '');
SELECT pg_catalog.pg_extension_config_dump('account_changes_change_id_seq', '');

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
    IF TG_OP = 'UPDATE' AND NEW.credit_limit < OLD.credit_limit AND NEW.balance < -NEW.credit_limit THEN
        RAISE EXCEPTION 'credit limit % of account % is below its current debt %',
                        NEW.credit_limit, OLD.account_id, -NEW.balance
            USING ERRCODE = '23514',
                  DETAIL = 'The balance may never be below minus the credit limit.',
                  HINT = 'Collect a deposit first, or lower the limit to no less than the debt.';
    END IF;
    IF NEW.status = 'closed' AND (TG_OP = 'INSERT' OR OLD.status <> 'closed')
       AND EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o
                   WHERE o.account_id = NEW.account_id AND o.status IN ('active', 'past_due')) THEN
        RAISE EXCEPTION 'account % holds live numbers and cannot be closed', NEW.account_id
            USING ERRCODE = '55000',
                  DETAIL = 'A closed account is never billed; its numbers would stay rented at Twilio unpaid.',
                  HINT = 'Release its numbers with numbers_release(), or move them to another account with numbers_transfer(), first.';
    END IF;
    RETURN NEW;
END $$;
-- Record every change of credit_limit and status in account_changes: the
-- role acting (SET ROLE's if any, else the session's — a SECURITY DEFINER
-- function does not hide who called it) and both values.  Changes only: an
-- account's first values are its row's (pg_restore inserts the accounts,
-- then the history as it was dumped).
CREATE FUNCTION _accounts_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text := coalesce(nullif(current_setting('role', true), 'none'), session_user::text);
BEGIN
    INSERT INTO twilio_numbers.account_changes (account_id, changed_by, field, old_value, new_value)
    SELECT NEW.account_id, who, c.field, c.old_value, c.new_value
    FROM (VALUES ('credit_limit', OLD.credit_limit::text, NEW.credit_limit::text),
                 ('status', OLD.status, NEW.status)) AS c(field, old_value, new_value)
    WHERE c.old_value IS DISTINCT FROM c.new_value;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_history AFTER UPDATE OF credit_limit, status ON accounts
    FOR EACH ROW EXECUTE FUNCTION _accounts_history();
REVOKE ALL ON FUNCTION _accounts_history() FROM PUBLIC;

-- billing (a closed account is never billed; a pass dated in the future releases only after the real
-- grace period): in _bill_range and _bill_batch as the queue runners' part below re-creates them

-- a deposit that overflows the balance: 22023
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
    BEGIN
        INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo)
        VALUES (numbers_deposit.account_id, numbers_deposit.amount, 'deposit', numbers_deposit.memo);
    EXCEPTION WHEN numeric_value_out_of_range THEN
        -- the balance would not fit numeric(14,2): the amount is the caller's error
        RAISE EXCEPTION 'a deposit of % would take the balance of account % beyond 999999999999.99',
                        numbers_deposit.amount, numbers_deposit.account_id
            USING ERRCODE = '22023',
                  DETAIL = 'An account''s balance is numeric(14,2).',
                  HINT = 'Check the amount; nothing was credited.';
    END;
    RETURN (SELECT x.balance FROM twilio_numbers.accounts x WHERE x.account_id = numbers_deposit.account_id);
END $$;

-- resolved dead letters leave the view (the rows stay)
-- A dead letter leaves the view once a later job did what it failed to do
-- (the same kind for the same SID, attempt or number: reconcile queued it
-- again, or a DBA did); the row stays in work_queue as history.
CREATE OR REPLACE VIEW queue_dead_letters AS
SELECT d.job_id, d.kind, d.phone_number, d.number_id, d.twilio_sid, d.attempts, d.last_error, d.created_at,
       d.updated_at
FROM work_queue d
WHERE d.status = 'dead'
  AND NOT EXISTS (SELECT 1 FROM work_queue l
                  WHERE l.status = 'done' AND l.job_id > d.job_id AND l.kind = d.kind
                    AND (l.twilio_sid = d.twilio_sid OR l.attempt_id = d.attempt_id
                         OR (l.twilio_sid IS NULL AND d.twilio_sid IS NULL AND l.number_id = d.number_id)));
COMMENT ON VIEW queue_dead_letters IS
  'Jobs that failed queue_max_attempts times and that no later job has done since; they need a DBA.';
-- ---- end of ownership and money ----

--------------------------------------------------------------------------
-- Messaging: Messaging Services and emergency addresses — a
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
    CHECK (kind IN ('release', 'compensate', 'resync', 'hosted_poll', 'hosted_cancel', 'bundle_poll',
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
    -- customers' addresses, what a country requires, their bundles
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'twilio_numbers.numbers_address_create, twilio_numbers.numbers_address_update, '
        'twilio_numbers.numbers_address_delete, twilio_numbers.numbers_addresses, '
        'twilio_numbers.numbers_addresses_refresh, '
        'twilio_numbers.numbers_requirements, twilio_numbers.numbers_bundle_register TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.addresses, twilio_numbers.bundles, '
        'twilio_numbers.bundle_history TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.accounts, twilio_numbers.owned_numbers, '
        'twilio_numbers.live_numbers, twilio_numbers.ledger, twilio_numbers.price_list, twilio_numbers.account_numbers, '
        'twilio_numbers.account_monthly_cost, twilio_numbers.hosted_orders, '
        'twilio_numbers.hosted_order_history TO %s', role);
    -- which Twilio account a customer's numbers live in is the DBA's
    -- decision (numbers_map_account), never the application's
    EXECUTE format('GRANT INSERT (name, currency, credit_limit, status), '
        'UPDATE (name, credit_limit, status) ON twilio_numbers.accounts TO %s', role);
END $$;

REVOKE ALL ON FUNCTION numbers_messaging_assign, numbers_messaging_unassign, numbers_messaging_numbers,
    _reconcile_messaging, _reconcile_emergency FROM PUBLIC;

-- the order the queue runners claim jobs in: urgent first (compensations,
-- releases, re-syncs, polls), oldest first within a kind (worker.c)
CREATE INDEX work_queue_claim ON work_queue
    ((CASE kind WHEN 'compensate' THEN 0 WHEN 'hosted_cancel' THEN 0 WHEN 'release' THEN 1
                WHEN 'resync' THEN 2 WHEN 'messaging_resync' THEN 2 ELSE 3 END), job_id)
    WHERE status = 'pending';

-- The queue runners (worker.c): what each is doing now.
CREATE VIEW queue_runners AS
SELECT a.pid, a.backend_start AS started_at, a.state, a.query AS activity, a.query_start AS activity_since,
       a.wait_event_type, a.wait_event
FROM pg_stat_activity a
WHERE a.backend_type = 'twilio_numbers queue runner';
COMMENT ON VIEW queue_runners IS
  'The background workers that run queued jobs: pid, what each is doing (job, number, attempt), its wait.';

-- The worker's billing never waits on an application: an account an open
-- transaction holds is left for the next pass (_bill_range takes the
-- accounts to skip, _bill_batch finds them when its run is the worker's)
DROP FUNCTION _billing_run_batch(bigint, bigint, bigint, timestamptz);
DROP FUNCTION _bill_batch(bigint, bigint, timestamptz);
DROP FUNCTION _bill_range(bigint, bigint, timestamptz);
-- Bill one range of accounts as of p_as_of, in one statement:
--   * the range's due numbers are locked (SKIP LOCKED: one being released or
--     changed right now waits for the next pass rather than making anyone wait);
--   * every due period of every number (missed ones too, oldest first) is
--     charged while the account's balance + credit_limit covers it — a
--     running sum per account, so no charge goes beyond the limit;
--   * a number left with an unpaid period turns past_due (since the pass
--     that found the debt, so that a catch-up pass after an outage never
--     releases it in the same breath); one fully paid turns active again.
-- Accounts are not locked here: the ledger trigger locks them (in id order)
-- only at the end of the statement, so a concurrent purchase waits at most
-- for the commit, not for the batch.  If a purchase debited an account
-- between the read and the trigger, the trigger refuses (TN001) and
-- _bill_batch runs the range again with its accounts locked first.  The
-- accounts of p_skip (held by open transactions, _bill_batch found) are
-- left for the next pass, their numbers counted as skipped.
-- Exactly one charge per (number, period): the unique index on the ledger.
CREATE FUNCTION _bill_range(p_lo bigint, p_hi bigint, p_as_of timestamptz, p_skip bigint[],
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
          AND o.account_id <> ALL (p_skip)
          -- a closed account is never billed
          AND NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts c
                          WHERE c.account_id = o.account_id AND c.status = 'closed')
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
              AND o.status IN ('active', 'past_due') AND o.next_billing_at <= p_as_of
              AND NOT EXISTS (SELECT 1 FROM twilio_numbers.accounts c
                              WHERE c.account_id = o.account_id AND c.status = 'closed'))
           - (SELECT count(*) FROM due)
    INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped;
END $$;

-- Bill one batch of accounts (one short transaction in the worker), then
-- release the past-due numbers whose grace_period is over, through the
-- queue and without a refund.  Over in real time too: a pass dated in the
-- future charges and marks past due as of its instant, but a release is
-- irreversible, so it waits until the grace period has really passed
-- (past_due_since + grace_period <= now()).  With p_skip_busy (the worker's
-- passes) an account an open transaction holds (a purchase not yet
-- committed debited it) is never waited for: found with SKIP LOCKED in a
-- subtransaction that is rolled back (so nothing stays locked), it is left
-- for the next pass and its due numbers counted as skipped; one taken in the
-- instant between that look and the debit is waited for.  Without (a DBA's
-- numbers_run_billing) the batch waits for such an account at its debit.
CREATE FUNCTION _bill_batch(p_lo bigint, p_hi bigint, p_as_of timestamptz, p_skip_busy boolean DEFAULT false,
    OUT numbers_charged bigint, OUT periods_charged bigint, OUT amount numeric,
    OUT past_due bigint, OUT reactivated bigint, OUT released bigint, OUT skipped bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grace interval := current_setting('twilio_numbers.grace_period')::interval;
    busy bigint[] := '{}';
BEGIN
    IF p_skip_busy THEN
        BEGIN
            SELECT coalesce(array_agg(a.account_id), '{}') INTO busy
            FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi
              AND a.account_id NOT IN (SELECT f.account_id FROM twilio_numbers.accounts f
                                       WHERE f.account_id BETWEEN p_lo AND p_hi
                                       FOR NO KEY UPDATE SKIP LOCKED);
            RAISE SQLSTATE 'TN999';     -- give the probe's row locks back
        EXCEPTION WHEN SQLSTATE 'TN999' THEN
            NULL;
        END;
    END IF;
    BEGIN
        SELECT * INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped
        FROM twilio_numbers._bill_range(p_lo, p_hi, p_as_of, busy);
    EXCEPTION WHEN SQLSTATE 'TN001' THEN
        -- a purchase debited an account between our read and our debit:
        -- bill the range again with its accounts locked first (skipping
        -- busy ones: those an open transaction holds now wait for the next pass)
        IF p_skip_busy THEN
            SELECT busy || coalesce(array_agg(a.account_id), '{}') INTO busy
            FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi AND a.account_id <> ALL (busy)
              AND a.account_id NOT IN (SELECT f.account_id FROM twilio_numbers.accounts f
                                       WHERE f.account_id BETWEEN p_lo AND p_hi AND f.account_id <> ALL (busy)
                                       ORDER BY f.account_id
                                       FOR NO KEY UPDATE SKIP LOCKED);
        ELSE
            PERFORM 1 FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi
            ORDER BY a.account_id
            FOR NO KEY UPDATE;
        END IF;
        SELECT * INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped
        FROM twilio_numbers._bill_range(p_lo, p_hi, p_as_of, busy);
    END;

    WITH expired AS (
        SELECT o.number_id FROM twilio_numbers.owned_numbers o
        WHERE o.account_id BETWEEN p_lo AND p_hi AND o.status = 'past_due'
          AND o.past_due_since + grace <= least(p_as_of, now())
        FOR NO KEY UPDATE SKIP LOCKED),
    gone AS (
        UPDATE twilio_numbers.owned_numbers o SET status = 'releasing', released_at = now(), updated_at = now()
        FROM expired e WHERE o.number_id = e.number_id
        RETURNING o.number_id, o.phone_number, o.twilio_sid, o.twilio_account_sid),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload)
        SELECT 'release', g.number_id, g.phone_number, g.twilio_sid, g.twilio_account_sid,
               '{"reason": "grace period over"}'
        FROM gone g
        RETURNING 1)
    SELECT count(*) INTO released FROM queued;
    IF released > 0 THEN
        PERFORM twilio_numbers._wake_worker_at_commit();
    END IF;
END $$;

-- One batch of a billing run, counted into the run's row (the worker calls
-- it in a transaction of its own per batch; its runs skip accounts an open
-- transaction holds).
CREATE FUNCTION _billing_run_batch(p_run_id bigint, p_lo bigint, p_hi bigint, p_as_of timestamptz)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs r SET
        batches_done = r.batches_done + 1,
        numbers_charged = r.numbers_charged + b.numbers_charged,
        periods_charged = r.periods_charged + b.periods_charged,
        amount = r.amount + b.amount, past_due = r.past_due + b.past_due,
        reactivated = r.reactivated + b.reactivated, released = r.released + b.released,
        skipped = r.skipped + b.skipped
    FROM twilio_numbers._bill_batch(p_lo, p_hi, p_as_of,
                                    (SELECT w.started_by = 'worker' FROM twilio_numbers.billing_runs w
                                     WHERE w.run_id = p_run_id)) b
    WHERE r.run_id = p_run_id;
END;

REVOKE ALL ON FUNCTION _bill_range(bigint, bigint, timestamptz, bigint[]),
    _bill_batch(bigint, bigint, timestamptz, boolean), _billing_run_batch(bigint, bigint, bigint, timestamptz)
    FROM PUBLIC;

--------------------------------------------------------------------------
-- Operations: versions, dead letters, the reporting role
--------------------------------------------------------------------------
-- The version of the library this session loaded (EXTVERSION at build).
CREATE FUNCTION _library_version() RETURNS text
AS 'MODULE_PATHNAME', 'tn_library_version_sql' LANGUAGE C STRICT STABLE;

-- The library's version and the schema's (pg_extension): they differ after
-- a package upgrade until ALTER EXTENSION twilio_numbers UPDATE (or when the
-- server was not restarted after it), and the worker waits then.
CREATE FUNCTION numbers_version(OUT library text, OUT schema text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT twilio_numbers._library_version(), e.extversion
FROM pg_catalog.pg_extension e WHERE e.extname = 'twilio_numbers'
$$;
COMMENT ON FUNCTION numbers_version IS
  'The twilio_numbers library''s version and the installed schema''s; they must be equal for the worker to run.';

-- A DBA puts a dead letter back in the queue (after fixing its cause): it
-- is tried at once, with its attempts counted from zero.
CREATE FUNCTION numbers_retry_dead_letter(job_id bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE twilio_numbers.work_queue q
    SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now(),
        last_error = 'retried by a DBA after: ' || coalesce(q.last_error, 'no error recorded')
    WHERE q.job_id = numbers_retry_dead_letter.job_id
      AND q.job_id IN (SELECT d.job_id FROM twilio_numbers.queue_dead_letters d);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % is not a dead letter', numbers_retry_dead_letter.job_id
            USING ERRCODE = 'P0002',
                  HINT = 'twilio_numbers.queue_dead_letters lists them (not those a later job has done since).';
    END IF;
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN true;
END $$;
COMMENT ON FUNCTION numbers_retry_dead_letter IS
  'DBA: put one dead letter back in the queue, attempts from zero, tried at once.';

-- ... or all of them (those no later job has done since); returns how many.
CREATE FUNCTION numbers_retry_dead_letters() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE twilio_numbers.work_queue q
    SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now(),
        last_error = 'retried by a DBA after: ' || coalesce(q.last_error, 'no error recorded')
    WHERE q.job_id IN (SELECT d.job_id FROM twilio_numbers.queue_dead_letters d);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN n;
END $$;
COMMENT ON FUNCTION numbers_retry_dead_letters IS
  'DBA: put every dead letter back in the queue; returns how many.';

-- A reporting role reads every table and view, and runs the read-only functions.
CREATE OR REPLACE FUNCTION grant_reporting(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA twilio_numbers TO %s', role);
    -- the views over shared memory call these read-only functions
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.call_log_entries, '
        'twilio_numbers.inflight_entries, twilio_numbers.worker_info, twilio_numbers.request_budget_info, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund, '
        'twilio_numbers._capabilities, twilio_numbers.twilio_clock_info TO %s', role);
    -- and every function that only reads the database: reports, estimates,
    -- statements, versions, the incarnation (not the catalog and prices,
    -- which ask Twilio with the account's credentials)
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.numbers_owned, '
        'twilio_numbers.numbers_cost_estimate, twilio_numbers.numbers_statement, '
        'twilio_numbers.numbers_trunk_numbers, twilio_numbers.numbers_version, twilio_numbers._library_version, '
        'twilio_numbers.numbers_incarnation TO %s', role);
END $$;
COMMENT ON FUNCTION grant_reporting IS
  'GRANT a reporting role read access to every table and view, and the read-only functions.';

REVOKE ALL ON FUNCTION _library_version(), numbers_version(), numbers_retry_dead_letter(bigint), numbers_retry_dead_letters() FROM PUBLIC;

-- The live numbers, named once (sql/schema/owned_numbers.sql).
CREATE VIEW live_numbers AS
SELECT * FROM owned_numbers WHERE status <> 'released';
COMMENT ON VIEW live_numbers IS 'Numbers not released: active, past due or being released.';

-- ---- the C–SQL boundary: the work queue and its jobs ----

-- The first poll of a hosted order or a bundle: due after the hosted_poll_ms
-- setting, which the caller may pass (p_poll_after) rather than have it
-- read in SQL.
DROP FUNCTION _hosted_order_record(bigint, jsonb, jsonb);
DROP FUNCTION _bundle_seen(bigint, text, jsonb, jsonb, text);

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

CREATE FUNCTION _bundle_seen(p_account_id bigint, p_bundle_sid text, r jsonb, reg jsonb DEFAULT NULL,
                             p_cloned_from text DEFAULT NULL, p_poll_after interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b twilio_numbers.bundles;
    new_status text := CASE WHEN r IS NULL THEN 'deleted' ELSE r->>'status' END;
BEGIN
    SELECT * INTO b FROM twilio_numbers.bundles WHERE bundle_sid = p_bundle_sid FOR UPDATE;
    IF NOT FOUND THEN
        IF r IS NULL THEN
            RETURN NULL;
        END IF;
        INSERT INTO twilio_numbers.bundles
            (bundle_sid, account_id, twilio_account_sid, regulation_sid, iso_country, number_type, end_user_type,
             friendly_name, status, valid_until, cloned_from, twilio)
        VALUES (p_bundle_sid, p_account_id, r->>'account_sid', r->>'regulation_sid', reg->>'iso_country',
                replace(reg->>'number_type', ' ', '_'), reg->>'end_user_type', r->>'friendly_name', new_status,
                (r->>'valid_until')::timestamptz, p_cloned_from, r)
        RETURNING * INTO b;
    ELSIF new_status IS DISTINCT FROM b.status THEN
        UPDATE twilio_numbers.bundles SET status = new_status, status_changed_at = now(),
               valid_until = CASE WHEN r IS NULL THEN valid_until ELSE (r->>'valid_until')::timestamptz END,
               friendly_name = coalesce(r->>'friendly_name', friendly_name), twilio = coalesce(r, twilio),
               updated_at = now()
        WHERE bundle_sid = p_bundle_sid;
    ELSE
        RETURN new_status;
    END IF;
    INSERT INTO twilio_numbers.bundle_history (bundle_sid, status) VALUES (p_bundle_sid, new_status);
    PERFORM pg_notify('twilio_numbers_bundle',
                      json_build_object('bundle_sid', p_bundle_sid, 'account_id', b.account_id,
                                        'status', new_status)::text);
    IF NOT twilio_numbers._bundle_settled(new_status)
       AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                       WHERE q.kind = 'bundle_poll' AND q.status = 'pending'
                         AND q.payload->>'bundle_sid' = p_bundle_sid) THEN
        INSERT INTO twilio_numbers.work_queue (kind, payload, next_attempt_at)
        VALUES ('bundle_poll', jsonb_build_object('bundle_sid', p_bundle_sid),
                now() + coalesce(p_poll_after, current_setting('twilio_numbers.hosted_poll_ms')::interval));
        PERFORM twilio_numbers._wake_worker_at_commit();
    END IF;
    RETURN new_status;
END $$;

REVOKE ALL ON FUNCTION _hosted_order_record(bigint, jsonb, jsonb, interval),
    _bundle_seen(bigint, text, jsonb, jsonb, text, interval) FROM PUBLIC;

-- The queue's rules in SQL (queue.sql): the claim's urgency order defined
-- once, for the work_queue_claim index and the claim; enqueue, claim, done,
-- failed (retry with backoff, dead letter), again, the next due job, the
-- dead-letter retry; the facts the jobs go by.
DROP INDEX work_queue_claim;

CREATE FUNCTION _job_urgency(kind text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE kind WHEN 'compensate' THEN 0 WHEN 'hosted_cancel' THEN 0 WHEN 'release' THEN 1
                 WHEN 'resync' THEN 2 WHEN 'messaging_resync' THEN 2 ELSE 3 END
$$;

CREATE INDEX work_queue_claim ON work_queue (_job_urgency(kind), job_id) WHERE status = 'pending';

CREATE FUNCTION _job_runnable(kind text, writes_paused boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT NOT writes_paused OR kind IN ('compensate', 'hosted_cancel', 'hosted_poll')
$$;

CREATE FUNCTION _queue_enqueue(p_kind text, p_number_id bigint, p_phone_number text, p_twilio_sid text,
                               p_twilio_account_sid text, p_payload jsonb, p_attempt_id bigint)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO twilio_numbers.work_queue
        (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    VALUES (p_kind, p_number_id, p_phone_number, p_twilio_sid, p_twilio_account_sid, p_payload, p_attempt_id);
END;

CREATE FUNCTION _queue_next_due_ms(p_writes_paused boolean) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT ceil(extract(epoch FROM min(q.next_attempt_at) - clock_timestamp()) * 1000)::bigint
    FROM twilio_numbers.work_queue q
    WHERE q.status = 'pending' AND twilio_numbers._job_runnable(q.kind, p_writes_paused);
END;

CREATE FUNCTION _queue_claim(p_writes_paused boolean, p_tries integer) RETURNS SETOF work_queue
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j twilio_numbers.work_queue;
    skipped bigint[] := '{}';
BEGIN
    FOR i IN 1 .. p_tries LOOP
        SELECT * INTO j FROM twilio_numbers.work_queue q
        WHERE q.status = 'pending' AND q.next_attempt_at <= now() AND q.job_id <> ALL (skipped)
          AND twilio_numbers._job_runnable(q.kind, p_writes_paused)
        ORDER BY twilio_numbers._job_urgency(q.kind), q.job_id
        LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF pg_try_advisory_xact_lock(1953393005, hashtext(coalesce(j.phone_number, j.twilio_sid, j.job_id::text))) THEN
            RETURN NEXT j;
            RETURN;
        END IF;
        skipped := skipped || j.job_id;
    END LOOP;
END $$;

CREATE FUNCTION _queue_done(p_job_id bigint, p_note text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.work_queue
    SET attempts = attempts + 1, last_error = p_note, updated_at = now(), status = 'done', finished_at = now()
    WHERE job_id = p_job_id;
END;

CREATE FUNCTION _queue_failed(p_job_id bigint, p_error text, p_outage boolean,
                              p_base_ms double precision, p_max_ms double precision, p_max_attempts integer)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
BEGIN
    UPDATE twilio_numbers.work_queue SET
        attempts = CASE WHEN p_outage THEN attempts ELSE attempts + 1 END,
        last_error = CASE WHEN p_outage THEN 'not counted (Twilio outage): ' || p_error ELSE p_error END,
        updated_at = now(),
        status = CASE WHEN NOT p_outage AND attempts + 1 >= p_max_attempts THEN 'dead' ELSE 'pending' END,
        finished_at = NULL,
        next_attempt_at = CASE
            WHEN p_outage THEN now() + make_interval(secs => least(p_max_ms, greatest(p_base_ms,
                2 * 1000 * extract(epoch FROM next_attempt_at - updated_at))) * (0.75 + 0.25 * random()) / 1000.0)
            ELSE now() + make_interval(secs => least(p_base_ms * power(2, least(attempts, 20)), p_max_ms)
                                               * (0.5 + 0.5 * random()) / 1000.0) END
    WHERE job_id = p_job_id
    RETURNING job_id, status, kind, phone_number INTO j;
    IF NOT FOUND OR j.status <> 'dead' THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('twilio_numbers_dead_letter',
                      json_build_object('job_id', j.job_id, 'kind', j.kind, 'phone_number', j.phone_number)::text);
    RETURN true;
END $$;

CREATE FUNCTION _queue_again(p_job_id bigint, p_again_ms double precision) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.work_queue SET attempts = 0, last_error = NULL, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => p_again_ms / 1000.0)
    WHERE job_id = p_job_id;
END;

CREATE FUNCTION _queue_retry_dead(p_job_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE twilio_numbers.work_queue q
    SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now(),
        last_error = 'retried by a DBA after: ' || coalesce(q.last_error, 'no error recorded')
    WHERE (p_job_id IS NULL OR q.job_id = p_job_id)
      AND q.job_id IN (SELECT d.job_id FROM twilio_numbers.queue_dead_letters d);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN n;
END $$;

CREATE FUNCTION _queue_watching(p_job_id bigint, p_until timestamptz) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.work_queue
    SET payload = coalesce(payload, '{}') || jsonb_build_object('watching_until', p_until)
    WHERE job_id = p_job_id AND NOT coalesce(payload ? 'watching_until', false);
END;

CREATE FUNCTION _live_row_owns(p_sid text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM twilio_numbers.live_numbers l WHERE l.twilio_sid = p_sid);
END;

CREATE FUNCTION _hosted_order_committed(p_sid text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM twilio_numbers.hosted_orders h WHERE h.order_sid = p_sid);
END $$;

CREATE FUNCTION _number_exists(p_number_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id);
END;

CREATE FUNCTION _number_released(p_number_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers SET status = 'released', updated_at = now()
    WHERE number_id = p_number_id AND status = 'releasing';
END;

CREATE FUNCTION _number_for_resync(p_number_id bigint)
RETURNS TABLE (twilio_sid text, twilio_account_sid text, status text, address_sid text, bundle_sid text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT o.twilio_sid, o.twilio_account_sid, o.status, o.address_sid, o.bundle_sid
    FROM twilio_numbers.owned_numbers o WHERE o.number_id = p_number_id
    FOR UPDATE;
END;

CREATE FUNCTION _number_twilio_seen(p_number_id bigint, r jsonb) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.owned_numbers SET twilio = r WHERE number_id = p_number_id;
END;

CREATE OR REPLACE FUNCTION numbers_retry_dead_letter(job_id bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF numbers_retry_dead_letter.job_id IS NULL
       OR twilio_numbers._queue_retry_dead(numbers_retry_dead_letter.job_id) = 0 THEN
        RAISE EXCEPTION 'job % is not a dead letter', numbers_retry_dead_letter.job_id
            USING ERRCODE = 'P0002',
                  HINT = 'twilio_numbers.queue_dead_letters lists them (not those a later job has done since).';
    END IF;
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION numbers_retry_dead_letters() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN twilio_numbers._queue_retry_dead(NULL);
END $$;

-- the attempts the recorder and the jobs write (attempts.sql)

CREATE FUNCTION _attempt_open(p_kind text, p_phone_number text, p_twilio_account_sid text, p_recorded_in text,
                              p_backend_pid integer, p_deadline timestamptz, p_request_fields text[], p_md5 text)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO twilio_numbers.purchase_attempts
        (kind, phone_number, twilio_account_sid, recorded_in, backend_pid, deadline, request_fields, request_md5)
    VALUES (p_kind, p_phone_number, p_twilio_account_sid, p_recorded_in, p_backend_pid, p_deadline,
            p_request_fields, nullif(p_md5, ''))
    RETURNING attempt_id;
END;

CREATE FUNCTION _attempt_settle(p_attempt_id bigint, p_outcome text, p_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.purchase_attempts SET
        twilio_sid = coalesce(nullif(p_sid, ''), twilio_sid),
        state = CASE WHEN p_outcome IS NULL THEN state ELSE 'closed' END, outcome = p_outcome,
        closed_at = CASE WHEN p_outcome IS NULL THEN NULL ELSE now() END
    WHERE attempt_id = p_attempt_id AND state = 'open';
END;

CREATE FUNCTION _attempt_close(p_attempt_id bigint, p_outcome text, p_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.purchase_attempts SET state = 'closed', outcome = p_outcome,
        twilio_sid = coalesce(p_sid, twilio_sid), closed_at = now()
    WHERE attempt_id = p_attempt_id AND state = 'open';
END;

CREATE FUNCTION _attempt_made(p_attempt_id bigint, p_sid text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.purchase_attempts
    SET created_sids = array_append(created_sids, p_sid), twilio_sid = coalesce(twilio_sid, p_sid)
    WHERE attempt_id = p_attempt_id AND NOT p_sid = ANY (created_sids);
END;

CREATE FUNCTION _attempt_undo_facts(p_attempt_id bigint, p_payload jsonb, p_sid text)
RETURNS TABLE (twilio_account_sid text, started_at timestamptz, deadline timestamptz, request_fields text[],
               request_md5 text, unresolved integer, made integer, sid_done boolean, committed boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT a.twilio_account_sid, a.started_at, a.deadline, a.request_fields, a.request_md5,
           coalesce((p_payload->>'unresolved')::integer, 0), cardinality(a.created_sids),
           p_sid = ANY (a.created_sids), coalesce((p_payload->>'committed')::boolean, false)
    FROM twilio_numbers.purchase_attempts a WHERE a.attempt_id = p_attempt_id;
END;

CREATE FUNCTION _incarnation_described() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT format('it was live as system %s, timeline %s, database %s (%s); this is system %s, '
                  'timeline %s, database %s (%s)', i.system_identifier, i.timeline, i.database_oid,
                  i.database_name, e[1], e[2]::integer, e[3]::oid, current_database())
    FROM string_to_array(twilio_numbers._epoch(), ':') e
    LEFT JOIN twilio_numbers.incarnation i ON true;
END;

-- Billing: a run's start written once (_billing_run_start, the worker's and
-- numbers_run_billing's), its failure and interruption; the grace period
-- passed as an argument.
DROP FUNCTION _billing_run_batch(bigint, bigint, bigint, timestamptz);
DROP FUNCTION _bill_batch(bigint, bigint, timestamptz, boolean);

CREATE FUNCTION _bill_batch(p_lo bigint, p_hi bigint, p_as_of timestamptz, p_skip_busy boolean DEFAULT false,
    p_grace interval DEFAULT current_setting('twilio_numbers.grace_period')::interval,
    OUT numbers_charged bigint, OUT periods_charged bigint, OUT amount numeric,
    OUT past_due bigint, OUT reactivated bigint, OUT released bigint, OUT skipped bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    busy bigint[] := '{}';
BEGIN
    IF p_skip_busy THEN
        BEGIN
            SELECT coalesce(array_agg(a.account_id), '{}') INTO busy
            FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi
              AND a.account_id NOT IN (SELECT f.account_id FROM twilio_numbers.accounts f
                                       WHERE f.account_id BETWEEN p_lo AND p_hi
                                       FOR NO KEY UPDATE SKIP LOCKED);
            RAISE SQLSTATE 'TN999';     -- give the probe's row locks back
        EXCEPTION WHEN SQLSTATE 'TN999' THEN
            NULL;
        END;
    END IF;
    BEGIN
        SELECT * INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped
        FROM twilio_numbers._bill_range(p_lo, p_hi, p_as_of, busy);
    EXCEPTION WHEN SQLSTATE 'TN001' THEN
        -- a purchase debited an account between our read and our debit:
        -- bill the range again with its accounts locked first (skipping
        -- busy ones: those an open transaction holds now wait for the next pass)
        IF p_skip_busy THEN
            SELECT busy || coalesce(array_agg(a.account_id), '{}') INTO busy
            FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi AND a.account_id <> ALL (busy)
              AND a.account_id NOT IN (SELECT f.account_id FROM twilio_numbers.accounts f
                                       WHERE f.account_id BETWEEN p_lo AND p_hi AND f.account_id <> ALL (busy)
                                       ORDER BY f.account_id
                                       FOR NO KEY UPDATE SKIP LOCKED);
        ELSE
            PERFORM 1 FROM twilio_numbers.accounts a
            WHERE a.account_id BETWEEN p_lo AND p_hi
            ORDER BY a.account_id
            FOR NO KEY UPDATE;
        END IF;
        SELECT * INTO numbers_charged, periods_charged, amount, past_due, reactivated, skipped
        FROM twilio_numbers._bill_range(p_lo, p_hi, p_as_of, busy);
    END;

    WITH expired AS (
        SELECT o.number_id FROM twilio_numbers.owned_numbers o
        WHERE o.account_id BETWEEN p_lo AND p_hi AND o.status = 'past_due'
          AND o.past_due_since + p_grace <= least(p_as_of, now())
        FOR NO KEY UPDATE SKIP LOCKED),
    gone AS (
        UPDATE twilio_numbers.owned_numbers o SET status = 'releasing', released_at = now(), updated_at = now()
        FROM expired e WHERE o.number_id = e.number_id
        RETURNING o.number_id, o.phone_number, o.twilio_sid, o.twilio_account_sid),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload)
        SELECT 'release', g.number_id, g.phone_number, g.twilio_sid, g.twilio_account_sid,
               '{"reason": "grace period over"}'
        FROM gone g
        RETURNING 1)
    SELECT count(*) INTO released FROM queued;
    IF released > 0 THEN
        PERFORM twilio_numbers._wake_worker_at_commit();
    END IF;
END $$;

CREATE FUNCTION _billing_run_start(p_as_of timestamptz, p_started_by text, p_batch_size integer,
    OUT run_id bigint, OUT los bigint[], OUT his bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT coalesce(array_agg(b.lo ORDER BY b.lo), '{}'), coalesce(array_agg(b.hi ORDER BY b.lo), '{}')
    INTO los, his
    FROM twilio_numbers._billing_batches(p_as_of, p_batch_size) b;
    INSERT INTO twilio_numbers.billing_runs (as_of, started_by, batches_total)
    VALUES (p_as_of, p_started_by, cardinality(los))
    RETURNING billing_runs.run_id INTO run_id;
END $$;

CREATE FUNCTION _billing_run_batch(p_run_id bigint, p_lo bigint, p_hi bigint, p_as_of timestamptz,
                                   p_grace interval)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs r SET
        batches_done = r.batches_done + 1,
        numbers_charged = r.numbers_charged + b.numbers_charged,
        periods_charged = r.periods_charged + b.periods_charged,
        amount = r.amount + b.amount, past_due = r.past_due + b.past_due,
        reactivated = r.reactivated + b.reactivated, released = r.released + b.released,
        skipped = r.skipped + b.skipped
    FROM twilio_numbers._bill_batch(p_lo, p_hi, p_as_of,
                                    (SELECT w.started_by = 'worker' FROM twilio_numbers.billing_runs w
                                     WHERE w.run_id = p_run_id), p_grace) b
    WHERE r.run_id = p_run_id;
END;

CREATE FUNCTION _billing_run_failed(p_run_id bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs SET status = 'failed', finished_at = clock_timestamp(), error = p_error
    WHERE run_id = p_run_id;
END;

CREATE FUNCTION _billing_runs_interrupted() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.billing_runs SET status = 'interrupted',
        finished_at = clock_timestamp(), error = 'the worker stopped during the run'
    WHERE status = 'running' AND started_by = 'worker';
END;

CREATE OR REPLACE FUNCTION numbers_run_billing(as_of timestamptz DEFAULT now()) RETURNS billing_runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    run_id bigint;
    los bigint[];
    his bigint[];
    grace interval := current_setting('twilio_numbers.grace_period')::interval;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite instant, not %', coalesce(as_of::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT s.run_id, s.los, s.his INTO run_id, los, his
    FROM twilio_numbers._billing_run_start(numbers_run_billing.as_of, 'manual',
                                           current_setting('twilio_numbers.billing_batch_size')::integer) s;
    FOR i IN 1 .. cardinality(los) LOOP
        PERFORM twilio_numbers._billing_run_batch(run_id, los[i], his[i], numbers_run_billing.as_of, grace);
    END LOOP;
    RETURN twilio_numbers._billing_run_finish(run_id);
END $$;

REVOKE ALL ON FUNCTION _job_urgency(text), _job_runnable(text, boolean),
    _queue_enqueue(text, bigint, text, text, text, jsonb, bigint), _queue_next_due_ms(boolean),
    _queue_claim(boolean, integer), _queue_done(bigint, text),
    _queue_failed(bigint, text, boolean, double precision, double precision, integer),
    _queue_again(bigint, double precision), _queue_retry_dead(bigint), _queue_watching(bigint, timestamptz),
    _live_row_owns(text), _hosted_order_committed(text), _number_exists(bigint), _number_released(bigint),
    _number_for_resync(bigint), _number_twilio_seen(bigint, jsonb),
    _attempt_open(text, text, text, text, integer, timestamptz, text[], text), _attempt_settle(bigint, text, text),
    _attempt_close(bigint, text, text), _attempt_made(bigint, text), _attempt_undo_facts(bigint, jsonb, text),
    _incarnation_described(),
    _bill_batch(bigint, bigint, timestamptz, boolean, interval),
    _billing_run_start(timestamptz, text, integer), _billing_run_batch(bigint, bigint, bigint, timestamptz, interval),
    _billing_run_failed(bigint, text), _billing_runs_interrupted() FROM PUBLIC;

-- ---- the C–SQL boundary: purchases, attempts, hosted orders, changes ----

-- The C of purchases, hosted orders, adoptions and changes calls these
-- (store.c), never the tables (sql/schema/accounts.sql, owned_numbers.sql,
-- hosted.sql); the live condition is live_numbers'.

-- An account as the C functions read it (accounts_load).
CREATE FUNCTION _account(p_account_id bigint)
RETURNS TABLE (currency text, status text, twilio_account_sid text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT a.currency, a.status, a.twilio_account_sid FROM twilio_numbers.accounts a
    WHERE a.account_id = p_account_id;
END;

-- An account's money: stable, so that it reads with the snapshot its caller
-- gives (a purchase's funds check reads the latest committed balance).
CREATE FUNCTION _account_funds(p_account_id bigint)
RETURNS TABLE (balance numeric, credit_limit numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT a.balance, a.credit_limit FROM twilio_numbers.accounts a WHERE a.account_id = p_account_id;
END;

-- Write the Twilio account a customer account maps to (numbers_map_account,
-- which has checked it with Twilio; the guard refuses anyone else).
CREATE FUNCTION _account_map(p_account_id bigint, p_twilio_account_sid text)
RETURNS SETOF accounts
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE twilio_numbers.accounts a SET twilio_account_sid = p_twilio_account_sid
    WHERE a.account_id = p_account_id
    RETURNING a.*;
END;

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

-- Find a live number of an account, locked; the errors say what is wrong.
CREATE OR REPLACE FUNCTION _live_number(p_account_id bigint, p_phone text) RETURNS owned_numbers
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

CREATE OR REPLACE FUNCTION numbers_trunk_numbers(trunk_sid text)
RETURNS SETOF owned_numbers
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM twilio_numbers.live_numbers o
    WHERE o.trunk_sid = numbers_trunk_numbers.trunk_sid
    ORDER BY o.phone_number;
END;

REVOKE ALL ON FUNCTION _account(bigint), _account_funds(bigint), _account_map(bigint, text),
    _owned_number(bigint), _set_trunk(bigint, text), _transfer_needs(bigint), _transfer_record(bigint, bigint),
    _number_taken(text[], boolean), _hosted_order_lock(text), _hosted_order(text), _hosted_order_polled(text)
    FROM PUBLIC;

-- ---- the C–SQL boundary: reconcile ----

-- Reconcile's SQL called through store.c (sql/schema/reconcile.sql): the pass's
-- start, a listing's page, the unseen rows and their look-ups; the comparison
-- skips what an application holds locked; live_numbers names the live rows.
-- The main account, the subaccounts a DBA mapped, and those our live
-- numbers are in: the only accounts reconcile lists.
CREATE OR REPLACE FUNCTION _managed_accounts(p_main text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT array_agg(s ORDER BY s <> p_main, s)
        FROM (SELECT p_main AS s
              UNION SELECT a.twilio_account_sid FROM twilio_numbers.accounts a
                    WHERE a.twilio_account_sid IS NOT NULL
              UNION SELECT o.twilio_account_sid FROM twilio_numbers.live_numbers o
                    WHERE o.twilio_account_sid IS NOT NULL) m);

-- A pass's start (numbers_reconcile, C): what it reads before the listing —
-- the live rows, the open attempts, the managed accounts — and an empty work
-- table for the numbers Twilio lists, pg_temp.tn_reconcile_seen (dropped at
-- commit).  The table's statistics come from a small sample: the default one
-- holds 30,000 rows of resources in the backend's memory while ANALYZE runs,
-- memory that grew with the account.
CREATE FUNCTION _reconcile_begin(p_main text, OUT live bigint[], OUT attempts bigint[], OUT accounts text[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    live := (SELECT coalesce(array_agg(l.number_id), '{}') FROM twilio_numbers.live_numbers l);
    attempts := (SELECT coalesce(array_agg(a.attempt_id), '{}') FROM twilio_numbers.purchase_attempts a
                 WHERE a.state = 'open');
    accounts := twilio_numbers._managed_accounts(p_main);
    IF to_regclass('pg_temp.tn_reconcile_seen') IS NULL THEN
        CREATE TEMP TABLE tn_reconcile_seen
            (sid text PRIMARY KEY, phone text, account_sid text, created timestamptz, r jsonb) ON COMMIT DROP;
        ALTER TABLE pg_temp.tn_reconcile_seen ALTER sid SET STATISTICS 10, ALTER phone SET STATISTICS 10,
            ALTER account_sid SET STATISTICS 10, ALTER created SET STATISTICS 0, ALTER r SET STATISTICS 0;
    ELSE
        TRUNCATE pg_temp.tn_reconcile_seen;
    END IF;
END $$;
REVOKE ALL ON FUNCTION _reconcile_begin(text) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_begin IS
  'Reconcile (C): the live rows, open attempts and managed accounts read before the listing; an empty work table.';

-- One page of an account's listing at Twilio (IncomingPhoneNumbers), into the
-- work table; returns how many numbers it held.
CREATE FUNCTION _reconcile_listed(p_page jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, created, r)
    SELECT e->>'sid', e->>'phone_number', e->>'account_sid', twilio_numbers._twilio_time(e->>'date_created'), e
    FROM jsonb_array_elements(p_page->'incoming_phone_numbers') e
    ON CONFLICT (sid) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION _reconcile_listed(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_listed IS 'Reconcile (C): one page of a Twilio listing into the work table.';

-- The live rows read before the listing (p_live) that are active or past
-- due and that no listing showed: the C looks each up by its SID (with the
-- Twilio account its row names, p_main when none).  Volatile: it must see
-- the numbers this very pass wrote into the work table.
CREATE FUNCTION _reconcile_unseen(p_live bigint[], p_main text)
RETURNS TABLE (twilio_sid text, twilio_account_sid text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT o.twilio_sid, coalesce(o.twilio_account_sid, p_main)
    FROM twilio_numbers.owned_numbers o
    WHERE o.number_id = ANY (p_live) AND o.status IN ('active', 'past_due')
      AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t WHERE t.sid = o.twilio_sid);
END $$;
REVOKE ALL ON FUNCTION _reconcile_unseen(bigint[], text) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_unseen IS
  'Reconcile (C): the live rows no listing showed, to be looked up one by one.';

-- What the look-up of an unseen row found (r: Twilio's resource), into the
-- work table; r null: the look-up failed, so the number may still be there
-- (unsure: not vanished).
CREATE FUNCTION _reconcile_found(p_sid text, r jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, created, r)
    VALUES (p_sid, r->>'phone_number', r->>'account_sid', twilio_numbers._twilio_time(r->>'date_created'), r)
    ON CONFLICT (sid) DO NOTHING;
END $$;
REVOKE ALL ON FUNCTION _reconcile_found(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION _reconcile_found IS 'Reconcile (C): what the look-up of an unseen row found, into the work table.';

-- Compare the rows seen before the listing (p_seen) with the numbers Twilio
-- listed (pg_temp.tn_reconcile_seen) in the accounts of p_listed (p_failed:
-- accounts whose listing failed, with why), judge the open attempts read
-- before the listing (p_attempts), act and record each difference.
--
-- It never waits for an application: a row it would change, or whose
-- number or account a row it writes refers to, that another transaction
-- holds locked (FOR UPDATE, say) is skipped (SKIP LOCKED) and met again by
-- the next pass; the rest is reconciled.
CREATE OR REPLACE FUNCTION _reconcile(p_seen bigint[], p_listed text[], p_failed jsonb, p_attempts bigint[],
                           p_main text, p_epoch text)
RETURNS SETOF drift
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- statistics for the comparison's plans: without them a big account's
    -- joins go quadratic (a small sample: _reconcile_begin)
    ANALYZE pg_temp.tn_reconcile_seen;

    -- a row left releasing whose release job died (an older dead letter, an
    -- outage before outages stopped counting): queued again
    INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload)
    SELECT 'release', o.number_id, o.phone_number, o.twilio_sid, o.twilio_account_sid,
           '{"reason": "reconcile: its release job was dead"}'
    FROM twilio_numbers.owned_numbers o
    WHERE o.number_id IN (SELECT l.number_id FROM twilio_numbers.owned_numbers l
                          WHERE l.status = 'releasing' AND l.number_id = ANY (p_seen)
                          FOR KEY SHARE SKIP LOCKED)
      AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                      WHERE q.number_id = o.number_id AND q.kind = 'release' AND q.status <> 'dead');

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
                       -- (a request of it that got no reply may land late: even
                       -- an attempt that has a SID may have made this one too)
                       OR (a.phone_number = t.phone AND a.twilio_account_sid = t.account_sid
                           AND twilio_numbers._within_attempt(t.created, a.started_at, a.deadline)
                           AND twilio_numbers._configured_as(t.r, a.request_fields, a.request_md5)))
                ORDER BY a.twilio_sid IS NOT NULL DESC, a.recorded_in = p_epoch DESC, a.attempt_id DESC
                LIMIT 1) AS attempt_id
        FROM pg_temp.tn_reconcile_seen t
        WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.live_numbers o WHERE o.twilio_sid = t.sid)
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
                    -- its attempt's undo is pending (and watching for it)
                    WHEN EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                                 WHERE q.attempt_id = u.attempt_id AND q.status = 'pending') THEN 'queued'
                    -- let go means let go: a number of ours that vanished or was
                    -- released and came back is someone else's now
                    WHEN u.released_here THEN 'let_go'
                    WHEN a.recorded_in = p_epoch THEN 'ours'
                    WHEN a.attempt_id IS NOT NULL THEN 'unproven'
                    ELSE 'unmanaged' END AS verdict
        FROM unowned u LEFT JOIN twilio_numbers.purchase_attempts a ON a.attempt_id = u.attempt_id),
    -- a number reported before whose row another transaction holds (a DBA
    -- adopting it): left for the next pass
    free_kept AS MATERIALIZED (
        SELECT u.twilio_sid FROM twilio_numbers.unmanaged_at_twilio u
        WHERE u.twilio_sid IN (SELECT j.sid FROM judged j WHERE j.verdict IN ('unproven', 'unmanaged', 'let_go'))
        FOR NO KEY UPDATE SKIP LOCKED),
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
        FROM judged j WHERE j.verdict IN ('unproven', 'unmanaged', 'let_go')
          AND (j.sid IN (SELECT f.twilio_sid FROM free_kept f)
               OR NOT EXISTS (SELECT 1 FROM twilio_numbers.unmanaged_at_twilio u WHERE u.twilio_sid = j.sid))
        ON CONFLICT (twilio_sid) DO UPDATE
        SET last_seen_at = now(), friendly_name = excluded.friendly_name, resource = excluded.resource,
            twilio_account_sid = excluded.twilio_account_sid, in_main_account = excluded.in_main_account
        RETURNING twilio_sid, first_seen_at = now() AS first_seen)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, detail, action)
    SELECT CASE j.verdict WHEN 'unproven' THEN 'unproven_after_failover'
                          WHEN 'unmanaged' THEN 'unmanaged_at_twilio'
                          WHEN 'let_go' THEN 'unmanaged_at_twilio'
                          ELSE 'orphan_at_twilio' END,
           j.phone, j.sid,
           jsonb_strip_nulls(jsonb_build_object('account_sid', j.account_sid, 'attempt_id', j.attempt_id,
                                                'recorded_in', j.recorded_in,
                                                'friendly_name', j.r->>'friendly_name',
                                                'let_go_number_id',
                                                CASE WHEN j.verdict = 'let_go' THEN
                                                    (SELECT max(o.number_id) FROM twilio_numbers.owned_numbers o
                                                     WHERE o.twilio_sid = j.sid) END)),
           CASE j.verdict WHEN 'queued' THEN 'none: its release is already queued'
                          WHEN 'ours' THEN 'release queued'
                          WHEN 'unproven' THEN 'none: reported, never released (attempted before a failover or restore)'
                          WHEN 'let_go' THEN 'none: let go here (vanished or released) and back at Twilio; '
                                             'reported, never touched; adoptable'
                          ELSE 'none: not bought here; reported, never touched' END
    FROM judged j
    -- (a join: a subquery per number over kept went quadratic, 21 s for
    -- 20,000 numbers someone else owns in the account)
    LEFT JOIN kept k ON k.twilio_sid = j.sid
    WHERE j.verdict = 'ours'
       -- one row per finding episode: an undo already queued is reported
       -- once, not at every pass while it runs
       OR (j.verdict = 'queued'
           AND NOT EXISTS (SELECT 1 FROM twilio_numbers.drift d
                           WHERE d.twilio_sid = j.sid AND d.finding = 'orphan_at_twilio'
                             AND d.found_at >= (SELECT min(q.created_at) FROM twilio_numbers.work_queue q
                                                WHERE q.status = 'pending'
                                                  AND (q.twilio_sid = j.sid OR q.attempt_id = j.attempt_id))))
       OR k.first_seen
    RETURNING *;

    -- a number reported unmanaged is announced once, when first seen
    PERFORM pg_notify('twilio_numbers_unmanaged',
                      json_build_object('phone_number', u.phone_number, 'twilio_sid', u.twilio_sid,
                                        'account_sid', u.twilio_account_sid)::text)
    FROM twilio_numbers.unmanaged_at_twilio u WHERE u.first_seen_at = now();
    -- and forgotten once it is gone from a fully listed account, or ours now
    DELETE FROM twilio_numbers.unmanaged_at_twilio u
    WHERE u.twilio_sid IN (SELECT g.twilio_sid FROM twilio_numbers.unmanaged_at_twilio g
                           WHERE (g.twilio_account_sid = ANY (p_listed)
                                  AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t
                                                  WHERE t.sid = g.twilio_sid))
                              OR EXISTS (SELECT 1 FROM twilio_numbers.live_numbers o
                                         WHERE o.twilio_sid = g.twilio_sid)
                           FOR UPDATE SKIP LOCKED);

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
    -- (no SID recorded: its POST may have got no reply, and the job watches
    -- until the attempt's deadline or until it has found what that POST made)
    INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id)
    SELECT 'compensate', a.phone_number, a.twilio_sid, a.twilio_account_sid,
           CASE WHEN a.twilio_sid IS NULL THEN '{"reason": "reconcile", "unresolved": 1}'::jsonb
                ELSE '{"reason": "reconcile"}'::jsonb END,
           a.attempt_id
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
    -- (one an application holds, or whose account it holds: the next pass)
    RETURN QUERY
    WITH gone AS (
        UPDATE twilio_numbers.owned_numbers o
        SET status = 'released', released_at = now(), updated_at = now()
        WHERE o.number_id IN (SELECT v.number_id
                              FROM twilio_numbers.owned_numbers v
                              JOIN twilio_numbers.accounts a ON a.account_id = v.account_id
                              WHERE v.number_id = ANY (p_seen)
                                AND v.status IN ('active', 'past_due')
                                AND coalesce(v.twilio_account_sid, p_main) = ANY (p_listed)
                                AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t
                                                WHERE t.sid = v.twilio_sid)
                              FOR NO KEY UPDATE OF v SKIP LOCKED
                              FOR KEY SHARE OF a SKIP LOCKED)
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
    -- those an application holds, or whose account it holds: the next pass
    free AS MATERIALIZED (
        SELECT d.*
        FROM differs d
        WHERE (d.push <> '{}' OR d.moved_to IS NOT NULL)
          AND d.number_id IN (SELECT v.number_id
                              FROM twilio_numbers.owned_numbers v
                              JOIN twilio_numbers.accounts a ON a.account_id = v.account_id
                              WHERE v.number_id IN (SELECT c.number_id FROM differs c
                                                    WHERE c.push <> '{}' OR c.moved_to IS NOT NULL)
                              FOR KEY SHARE OF v SKIP LOCKED
                              FOR KEY SHARE OF a SKIP LOCKED)),
    queued AS (
        INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, payload)
        SELECT 'resync', d.number_id, d.phone_number,
               jsonb_strip_nulls(jsonb_build_object('reason', 'reconcile', 'other_account_sid', d.moved_to))
        FROM free d
        WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q
                          WHERE q.number_id = d.number_id AND q.kind = 'resync' AND q.status = 'pending')
        RETURNING number_id)
    INSERT INTO twilio_numbers.drift (finding, phone_number, twilio_sid, number_id, account_id, detail, action)
    SELECT 'config_drift', d.phone_number, d.twilio_sid, d.number_id, d.account_id,
           jsonb_strip_nulls(jsonb_build_object('to_push', nullif(d.push, '{}'), 'moved_to', d.moved_to)),
           'resync queued'
    FROM free d
    RETURNING *;

    PERFORM twilio_numbers._wake_worker_at_commit();
END $$;

-- ---- the C–SQL boundary: addresses, bundles, Messaging Services, prices ----

-- addresses.sql: the live numbers named once (live_numbers); the
-- statements addresses.c ran, as functions
-- The live numbers that name an address (Twilio refuses to delete it while
-- any do): what numbers_address_delete says before any request.
CREATE OR REPLACE FUNCTION _address_dependents(p_address_sid text) RETURNS text[]
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

-- bundles.sql: the statements bundles.c ran, as functions
-- The cached Regulations while younger than p_ttl_s seconds (the caller's
-- pricing_ttl_s), else no row: _regulations fetches them again.
CREATE FUNCTION _regulations_cached(p_iso_country text, p_number_type text, p_end_user_type text,
                                    p_ttl_s integer)
RETURNS SETOF regulations_cache
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM twilio_numbers.regulations_cache c
    WHERE c.iso_country = p_iso_country AND c.number_type = p_number_type
      AND c.end_user_type = p_end_user_type
      AND c.fetched_at > now() - make_interval(secs => p_ttl_s)
$$;

-- Cache the Regulations (and the address requirement) just fetched from
-- Twilio; the row.
CREATE FUNCTION _regulations_save(p_iso_country text, p_number_type text, p_end_user_type text,
                                  p_regulations jsonb, p_address_requirements text)
RETURNS regulations_cache
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO twilio_numbers.regulations_cache AS c
        (iso_country, number_type, end_user_type, regulations, address_requirements)
    VALUES (p_iso_country, p_number_type, p_end_user_type, p_regulations, p_address_requirements)
    ON CONFLICT (iso_country, number_type, end_user_type)
    DO UPDATE SET regulations = excluded.regulations, address_requirements = excluded.address_requirements,
                  fetched_at = now()
    RETURNING *
$$;

-- The account a bundle is registered for, its row locked (NULL: not
-- registered): a bundle is registered for one account only.
CREATE FUNCTION _bundle_lock(p_bundle_sid text) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.account_id FROM twilio_numbers.bundles b WHERE b.bundle_sid = p_bundle_sid FOR UPDATE
$$;

-- A bundle's row, as numbers_bundle_register returns it.
CREATE FUNCTION _bundle(p_bundle_sid text) RETURNS SETOF bundles
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM twilio_numbers.bundles b WHERE b.bundle_sid = p_bundle_sid
$$;

-- One more poll of a bundle still under review, counted from its last
-- status change: the count (NULL: no such bundle), for the backoff.
CREATE FUNCTION _bundle_polled(p_bundle_sid text) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE twilio_numbers.bundles b
    SET polls = CASE WHEN b.status_changed_at = now() THEN 0 ELSE b.polls + 1 END
    WHERE b.bundle_sid = p_bundle_sid
    RETURNING b.polls
$$;

-- messaging.sql: the live numbers named once; the statements messaging.c ran
-- The live numbers in a Messaging Service.
CREATE OR REPLACE FUNCTION numbers_messaging_numbers(service_sid text)
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

-- catalog.sql: the statements pricing.c ran
-- The price list's rows of a country, of one number type when given: the
-- customer's price of a type, the types numbers_pricing shows.
CREATE FUNCTION _price_list_rows(p_iso_country text, p_number_type text DEFAULT NULL)
RETURNS TABLE (number_type text, setup_price numeric, monthly_price numeric, currency text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.number_type, p.setup_price, p.monthly_price, p.currency FROM twilio_numbers.price_list p
    WHERE p.iso_country = p_iso_country AND (p_number_type IS NULL OR p.number_type = p_number_type)
$$;

-- Twilio's cached prices of a country, by number type, each saying whether
-- it is younger than p_ttl_s seconds (the caller's pricing_ttl_s).
CREATE FUNCTION _pricing_cached(p_iso_country text, p_ttl_s integer)
RETURNS TABLE (number_type text, base_price numeric, current_price numeric, country text, currency text,
               fresh boolean, fetched_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.number_type, c.base_price, c.current_price, c.country, c.currency,
           c.fetched_at > now() - make_interval(secs => p_ttl_s), c.fetched_at
    FROM twilio_numbers.pricing_cache c
    WHERE c.iso_country = p_iso_country
    ORDER BY c.number_type
$$;

-- Replace a country's cached Twilio prices with those just fetched (one
-- element per number type in each array).  One writer per country at a
-- time and nobody waits: the rows stay locked until the caller's
-- transaction ends (a purchase, across its HTTP calls), so a session that
-- finds another caching the country writes nothing and gets false.
CREATE FUNCTION _pricing_cache_save(p_iso_country text, p_country text, p_currency text,
                                    p_number_types text[], p_base_prices numeric[], p_current_prices numeric[])
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('twilio_numbers.pricing_cache'), hashtext(p_iso_country)) THEN
        RETURN false;
    END IF;
    DELETE FROM twilio_numbers.pricing_cache c WHERE c.iso_country = p_iso_country;
    FOR i IN 1 .. coalesce(array_length(p_number_types, 1), 0) LOOP
        -- another session may be caching the same country
        INSERT INTO twilio_numbers.pricing_cache AS c
            (iso_country, number_type, country, base_price, current_price, currency, fetched_at)
        VALUES (p_iso_country, p_number_types[i], p_country, p_base_prices[i], p_current_prices[i], p_currency, now())
        ON CONFLICT (iso_country, number_type) DO UPDATE SET
            country = excluded.country, base_price = excluded.base_price,
            current_price = excluded.current_price, currency = excluded.currency,
            fetched_at = excluded.fetched_at;
    END LOOP;
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION _address_lock(bigint, text), _addresses_lock(bigint), _address_forget(text),
    _address_copy_of(text, bigint, text), _regulations_cached(text, text, text, integer),
    _regulations_save(text, text, text, jsonb, text), _bundle_lock(text), _bundle(text), _bundle_polled(text),
    _messaging_pool_size(text), _messaging_set_service(bigint, text), _messaging_number(bigint),
    _messaging_resync_number(bigint), _messaging_in_use(), _messaging_seen_reset(), _messaging_seen_add(jsonb, text),
    _price_list_rows(text, text), _pricing_cached(text, integer),
    _pricing_cache_save(text, text, text, text[], numeric[], numeric[]) FROM PUBLIC;

-- ---- reports ----
-- the live numbers read through live_numbers
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
CREATE OR REPLACE VIEW account_numbers AS
SELECT o.account_id, a.name AS account_name, o.number_id, o.phone_number, o.friendly_name,
       o.number_type, o.iso_country, o.status, o.trunk_sid, o.capabilities,
       o.monthly_price AS monthly_fee, o.currency, o.purchased_at, o.next_billing_at, o.origin
FROM live_numbers o JOIN accounts a USING (account_id);

-- Reconcile of Messaging Services never waits for a row an application holds
CREATE OR REPLACE FUNCTION _reconcile_messaging(p_main text) RETURNS SETOF drift
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
