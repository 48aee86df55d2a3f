-- twilio_numbers 0.1 — install script.
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION twilio_numbers" to load this file. \quit

--------------------------------------------------------------------------
-- Prices: the reseller's price list and Twilio's prices, cached
--------------------------------------------------------------------------

-- The reseller's own prices.  Where no row applies, a customer pays Twilio's
-- current price plus twilio_numbers.markup_percent, with no setup fee.
CREATE TABLE price_list (
    iso_country   text NOT NULL CHECK (iso_country ~ '^[A-Z]{2}$'),
    number_type   text NOT NULL CHECK (number_type IN ('local', 'mobile', 'toll_free', 'national',
                                                      'voip', 'shared_cost', 'machine_to_machine')),
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

--------------------------------------------------------------------------
-- Catalog: search, prices, countries
--------------------------------------------------------------------------

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

--------------------------------------------------------------------------
-- Operations: the Twilio call log
--------------------------------------------------------------------------

CREATE FUNCTION call_log_entries(
    OUT seq         bigint,
    OUT at          timestamptz,
    OUT pid         integer,
    OUT method      text,
    OUT host        text,
    OUT path        text,
    OUT status      integer,
    OUT twilio_code integer,
    OUT duration_ms double precision,
    OUT error       text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tn_call_log'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION call_log_entries IS
  'The Twilio call log ring: recent requests of every backend and of the worker.';

CREATE VIEW call_log AS
  SELECT seq, at, pid, method, host, path, status, twilio_code, duration_ms, error
  FROM call_log_entries();
COMMENT ON VIEW call_log IS
  'Recent HTTP requests to Twilio: method, path, HTTP status, Twilio error code, duration. Never credentials.';

--------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; see README "Roles and grants"
--------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM PUBLIC;
