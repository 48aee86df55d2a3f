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
    numbers_address_delete, numbers_addresses, _regulations, numbers_requirements, _bundle_required,
    _bundle_settled, _bundle_seen, _bundle_pick, _bundles_described, numbers_bundle_register FROM PUBLIC;

--------------------------------------------------------------------------
-- Scale (issue 21): the cluster's request budget, seen from SQL
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

-- operations (issue 23): the incarnation that acts at Twilio
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

--------------------------------------------------------------------------
-- operations (issue 23): versions, dead letters, the reporting role
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
    WHERE q.job_id = numbers_retry_dead_letter.job_id AND q.status = 'dead';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % is not a dead letter', numbers_retry_dead_letter.job_id
            USING ERRCODE = 'P0002', HINT = 'twilio_numbers.queue_dead_letters lists them.';
    END IF;
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN true;
END $$;
COMMENT ON FUNCTION numbers_retry_dead_letter IS
  'DBA: put one dead letter back in the queue, attempts from zero, tried at once.';

-- ... or all of them; returns how many.
CREATE FUNCTION numbers_retry_dead_letters() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE twilio_numbers.work_queue q
    SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now(),
        last_error = 'retried by a DBA after: ' || coalesce(q.last_error, 'no error recorded')
    WHERE q.status = 'dead';
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
        'twilio_numbers._capabilities TO %s', role);
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
