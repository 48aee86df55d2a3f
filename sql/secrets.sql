--
-- Secrets: an application role can use the catalog but never read the
-- credentials, nor redirect the base URLs.
--
SELECT emu.clear_faults(), emu.clear_requests();
CREATE ROLE tn_app LOGIN;
GRANT USAGE ON SCHEMA twilio_numbers TO tn_app;
GRANT EXECUTE ON FUNCTION twilio_numbers.numbers_search, twilio_numbers.numbers_pricing,
                          twilio_numbers.numbers_countries TO tn_app;

-- the token, where the application can compare against it without any of
-- these statements containing it
CREATE TABLE public.secret_marker AS SELECT current_setting('twilio_numbers.auth_token') AS token;
GRANT SELECT ON public.secret_marker TO tn_app;
GRANT USAGE ON SCHEMA emu TO tn_app;

-- EXECUTE is not granted to PUBLIC on any function of the extension
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'twilio_numbers' AND has_function_privilege('public', p.oid, 'EXECUTE');

-- SECURITY DEFINER functions all pin search_path (lists the ones that do not)
SELECT p.proname, p.proconfig
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'twilio_numbers' AND p.prosecdef
  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
ORDER BY 1;
SELECT count(*) > 0 AS has_security_definer_functions
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'twilio_numbers' AND p.prosecdef;

SET ROLE tn_app;
-- the catalog works for the application
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 3);

-- but the secrets are nowhere to be read
-- (16 reworded the refusal and added a DETAIL: expected/secrets_1.out is the
-- output on 16 and later, secrets.out on 15)
SHOW twilio_numbers.auth_token;
SHOW twilio_numbers.account_sid;
SHOW twilio_numbers.api_secret;
SELECT current_setting('twilio_numbers.auth_token');
SELECT current_setting('twilio_numbers.auth_token', true);
SELECT count(*) > 10 AS other_settings_visible FROM pg_settings WHERE name LIKE 'twilio_numbers.%';
SELECT name FROM pg_settings WHERE name LIKE 'twilio_numbers.%' AND name ~ '(sid|token|key|secret)';
SELECT count(*) AS settings_showing_token
FROM pg_settings, public.secret_marker m WHERE strpos(coalesce(setting, ''), m.token) > 0;
-- the call log is for DBAs: the application cannot read it
SELECT count(*) FROM twilio_numbers.call_log;

-- nor can the application change the credentials or point Twilio's URLs elsewhere
SET twilio_numbers.auth_token = 'x';
SET twilio_numbers.api_url = 'http://attacker.example';
SET twilio_numbers.ca_file = '/tmp/evil.pem';
SET twilio_numbers.markup_percent = -50;
SELECT set_config('twilio_numbers.pricing_url', 'http://attacker.example', false);
-- the session-level settings it may change are the harmless ones
SET twilio_numbers.timeout_ms = 5000;
RESET twilio_numbers.timeout_ms;

-- errors seen by the application never carry the token
RESET ROLE;
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "status", "status": 400, "code": 21421, "times": 1}');
SET ROLE tn_app;
SELECT f.state, strpos(concat(f.message, f.detail, f.hint), m.token) > 0 AS shows_token
FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$) f, public.secret_marker m;
RESET ROLE;

-- no session's activity shows the token (read as superuser: the application
-- role sees only "<insufficient privilege>" for the others)
SELECT count(*) AS sessions_showing_token
FROM pg_stat_activity, public.secret_marker m WHERE strpos(coalesce(query, ''), m.token) > 0;

-- the tables and the call log hold no credentials either
SELECT count(*) AS call_log_entries_with_token
FROM twilio_numbers.call_log l, public.secret_marker m
WHERE strpos(concat(l.host, l.path, l.error), m.token) > 0;
SELECT count(*) AS pricing_rows_with_token
FROM twilio_numbers.pricing_cache c, public.secret_marker m
WHERE strpos(c::text, m.token) > 0;

-- the application cannot write the extension's tables directly
SET ROLE tn_app;
INSERT INTO twilio_numbers.price_list VALUES ('US', 'local', 0, 0.01, 'USD');
RESET ROLE;

DROP TABLE public.secret_marker;
REVOKE ALL ON SCHEMA emu FROM tn_app;
REVOKE ALL ON SCHEMA twilio_numbers FROM tn_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM tn_app;
DROP ROLE tn_app;
