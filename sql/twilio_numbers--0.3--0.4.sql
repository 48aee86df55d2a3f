-- twilio_numbers 0.3 -> 0.4 (ALTER EXTENSION twilio_numbers UPDATE TO '0.4')
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION twilio_numbers UPDATE TO '0.4'" to load this file. \quit

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
