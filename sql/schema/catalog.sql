--------------------------------------------------------------------------
-- Catalog and prices: the reseller's price list, Twilio's prices cached,
-- and the functions that search Twilio's inventory
--------------------------------------------------------------------------

-- The reseller's own prices.  Where no row applies, a customer pays Twilio's
-- current price plus twilio_numbers.markup_percent, with no setup fee.
-- number_type 'hosted' is the price of hosting a number (hosted.sql).
CREATE TABLE price_list (
    iso_country   text NOT NULL CHECK (iso_country ~ '^[A-Z]{2}$'),
    number_type   text NOT NULL CHECK (number_type IN ('local', 'mobile', 'toll_free', 'national', 'voip', 'shared_cost',
                                                      'machine_to_machine', 'hosted')),
    setup_price   numeric(12,2) NOT NULL DEFAULT 0 CHECK (setup_price >= 0),
    monthly_price numeric(12,2) NOT NULL CHECK (monthly_price >= 0),
    currency      text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    PRIMARY KEY (iso_country, number_type)
);
COMMENT ON TABLE price_list IS
  'The reseller''s prices per country and number type; overrides Twilio''s price plus markup.';
SELECT pg_catalog.pg_extension_config_dump('price_list', '');

-- Twilio's prices (Pricing v1), refreshed after twilio_numbers.pricing_ttl_s.
CREATE TABLE pricing_cache (
    iso_country   text NOT NULL,
    number_type   text NOT NULL,
    country       text,
    base_price    numeric,
    current_price numeric,
    currency      text,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (iso_country, number_type)
);
COMMENT ON TABLE pricing_cache IS
  'Twilio''s number prices per country and type, as last fetched; a cache, refilled on demand.';

-- Backends cache customer prices; a change to either table tells them
-- (a relcache invalidation).
CREATE FUNCTION _prices_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'tn_price_list_changed' LANGUAGE C;
CREATE TRIGGER price_list_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON price_list
    FOR EACH STATEMENT EXECUTE FUNCTION _prices_changed();
CREATE TRIGGER pricing_cache_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pricing_cache
    FOR EACH STATEMENT EXECUTE FUNCTION _prices_changed();

-- Prices are finite amounts of money (_check_money: accounts.sql).
CREATE FUNCTION _price_list_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM twilio_numbers._check_money('setup_price', NEW.setup_price, false);
    PERFORM twilio_numbers._check_money('monthly_price', NEW.monthly_price, false);
    RETURN NEW;
END $$;
CREATE TRIGGER price_list_guard BEFORE INSERT OR UPDATE ON price_list
    FOR EACH ROW EXECUTE FUNCTION _price_list_guard();

-- The customer's price of a number type (price_list, else Twilio's price
-- plus markup), as the C code computes it.
CREATE FUNCTION _customer_price(iso_country text, number_type text,
    OUT setup_price numeric, OUT monthly_price numeric, OUT currency text)
AS 'MODULE_PATHNAME', 'tn_customer_price_sql' LANGUAGE C VOLATILE STRICT;

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

-- Row types of the catalog functions (their column names repeat parameter
-- names, which RETURNS TABLE does not allow).
CREATE TYPE available_number AS (
    phone_number         text,
    friendly_name        text,
    number_type          text,
    iso_country          text,
    region               text,
    locality             text,
    postal_code          text,
    rate_center          text,
    lata                 text,
    latitude             numeric,
    longitude            numeric,
    address_requirements text,
    beta                 boolean,
    voice                boolean,
    sms                  boolean,
    mms                  boolean,
    fax                  boolean,
    setup_price          numeric,
    monthly_price        numeric,
    currency             text
);

CREATE TYPE number_price AS (
    iso_country   text,
    country       text,
    number_type   text,
    base_price    numeric,
    current_price numeric,
    setup_price   numeric,
    monthly_price numeric,
    currency      text
);

CREATE FUNCTION numbers_search(
    country                          text,
    number_type                      text    DEFAULT 'local',
    area_code                        text    DEFAULT NULL,
    contains                         text    DEFAULT NULL,
    sms                              boolean DEFAULT NULL,
    mms                              boolean DEFAULT NULL,
    voice                            boolean DEFAULT NULL,
    fax                              boolean DEFAULT NULL,
    in_region                        text    DEFAULT NULL,
    in_locality                      text    DEFAULT NULL,
    in_postal_code                   text    DEFAULT NULL,
    in_rate_center                   text    DEFAULT NULL,
    in_lata                          text    DEFAULT NULL,
    near_number                      text    DEFAULT NULL,
    near_lat_long                    text    DEFAULT NULL,
    distance                         integer DEFAULT NULL,
    exclude_all_address_required     boolean DEFAULT NULL,
    exclude_local_address_required   boolean DEFAULT NULL,
    exclude_foreign_address_required boolean DEFAULT NULL,
    beta                             boolean DEFAULT NULL,
    max_results                      integer DEFAULT 20)
RETURNS SETOF available_number
AS 'MODULE_PATHNAME', 'tn_numbers_search'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
COST 10000 ROWS 20;
COMMENT ON FUNCTION numbers_search IS
  'Search Twilio''s available numbers (one request, max_results 1-1000) with the customer''s price.';

CREATE FUNCTION numbers_pricing(country text)
RETURNS SETOF number_price
AS 'MODULE_PATHNAME', 'tn_numbers_pricing'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
COST 10000 ROWS 4;
COMMENT ON FUNCTION numbers_pricing IS
  'Twilio''s number prices for a country (cached for pricing_ttl_s) beside the customer''s prices.';

CREATE FUNCTION numbers_countries(
    OUT iso_country  text,
    OUT country      text,
    OUT number_types text[],
    OUT beta         boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tn_numbers_countries'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
COST 10000 ROWS 50;
COMMENT ON FUNCTION numbers_countries IS
  'Countries where Twilio offers numbers, and the number types of each.';
