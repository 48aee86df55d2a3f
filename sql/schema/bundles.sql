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
-- is followed by a bundle_poll job, first due after p_poll_after (the
-- hosted_poll_ms setting, passed by the caller; NULL: read here).  Returns
-- the status now.
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

-- Registering a bundle (C: its status and regulation are read from Twilio).
CREATE FUNCTION numbers_bundle_register(account_id bigint, bundle_sid text) RETURNS bundles
AS 'MODULE_PATHNAME', 'tn_numbers_bundle_register'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION numbers_bundle_register IS
  'Register a customer''s regulatory bundle (created at Twilio) by SID; the worker follows its status.';
