--
-- What a country requires (DE, GB, AU, US), cached like prices; bundles:
-- registered by SID, followed by the worker through Twilio's review, picked
-- by a purchase given none, and a purchase refused with nothing sent while
-- the customer's only bundle is still in review.  SIDs print as BU…/RN….
--
CREATE FUNCTION pg_temp.masked(t text) RETURNS text LANGUAGE sql
AS $$ SELECT regexp_replace(regexp_replace(t, '(AD|BU|PN|AC|RN)[0-9a-f]{32}', '\1…', 'g'), 'ccount [0-9]+', 'ccount N', 'g') $$;

-- ---- requirements ----
SELECT emu.clear_requests();
SELECT c.iso, c.type, c.eut, r.requirement, r.name, r.value
FROM (VALUES (1, 'DE', 'toll_free', 'individual'), (2, 'GB', 'local', 'business'), (3, 'GB', 'mobile', 'individual'),
             (4, 'AU', 'mobile', 'individual'), (5, 'AU', 'local', 'business'), (6, 'US', 'local', 'business')) c(n, iso, type, eut),
     LATERAL twilio_numbers.numbers_requirements(c.iso, c.type, c.eut) r
ORDER BY c.n, r.requirement, r.name, r.value;
-- the documents, as a customer reads them
SELECT name, value, description FROM twilio_numbers.numbers_requirements('AU', 'mobile', 'individual')
WHERE requirement = 'document' ORDER BY name, value;
-- one request for the regulations and one for the address rule per country, type and end user; then cached
SELECT method, regexp_replace(path, '^/2010-04-01/Accounts/AC[0-9a-f]{32}', '') AS path, count(*)
FROM emu.requests() r(e), LATERAL (SELECT e->>'method' AS method, e->>'path' AS path) x
GROUP BY 1, 2 ORDER BY 2;
SELECT emu.clear_requests();
SELECT count(*) AS rows FROM twilio_numbers.numbers_requirements('DE', 'toll_free', 'individual');
SELECT count(*) AS requests_sent FROM emu.log;
SELECT iso_country, number_type, end_user_type, jsonb_array_length(regulations) AS regulations, address_requirements
FROM twilio_numbers.regulations_cache ORDER BY 1, 2, 3;

-- ---- bundles ----
INSERT INTO twilio_numbers.accounts (name) VALUES ('Kangaroo Pty') RETURNING account_id AS roo \gset
SELECT twilio_numbers.numbers_deposit(:roo, 100) IS NOT NULL AS deposited;
SELECT phone_number AS au_mobile FROM twilio_numbers.numbers_search('AU', number_type => 'mobile', max_results => 1) \gset

-- no bundle at all: refused, nothing sent
SELECT emu.clear_requests();
SELECT state, message, pg_temp.masked(detail) AS detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :roo, :'au_mobile'));
SELECT count(*) FILTER (WHERE method = 'POST') AS posts FROM emu.log;

-- its only bundle is in review: refused, nothing sent, the bundle named
SELECT emu.call('POST', '/_emulator/bundles', '{"iso_country": "AU", "number_type": "mobile", "end_user_type": "individual",
                "status": "in-review"}')->>'sid' AS bundle \gset
SELECT pg_temp.masked(bundle_sid) AS bundle_sid, iso_country, number_type, end_user_type, status
FROM twilio_numbers.numbers_bundle_register(:roo, :'bundle');
SELECT emu.clear_requests();
SELECT state, message, pg_temp.masked(detail) AS detail
FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :roo, :'au_mobile'));
SELECT count(*) FILTER (WHERE method = 'POST') AS posts FROM emu.log;
SELECT kind, status FROM twilio_numbers.work_queue WHERE kind = 'bundle_poll' AND payload->>'bundle_sid' = :'bundle';

-- Twilio approves it: the worker sees it, records it, and stops following it
SELECT emu.call('POST', '/_emulator/bundles/' || :'bundle', '{"status": "twilio-approved"}')->>'status' AS at_twilio;
SELECT emu.wait_until(format('SELECT status = %L FROM twilio_numbers.bundles WHERE bundle_sid = %L',
                             'twilio-approved', :'bundle')) AS approved;
SELECT status FROM twilio_numbers.bundle_history WHERE bundle_sid = :'bundle' ORDER BY seen_at;
SELECT emu.wait_until(format($$SELECT status = 'done' FROM twilio_numbers.work_queue
                               WHERE kind = 'bundle_poll' AND payload->>'bundle_sid' = %L$$, :'bundle')) AS no_longer_followed;

-- now the purchase takes it
SELECT emu.clear_requests();
SELECT phone_number, number_type, pg_temp.masked(bundle_sid) AS bundle_sid, status
FROM twilio_numbers.numbers_purchase(:roo, :'au_mobile');
SELECT form->>'BundleSid' = :'bundle' AS sent_our_bundle FROM emu.log WHERE method = 'POST';
-- a bundle given is sent as it is, not replaced
SELECT phone_number AS au_mobile2 FROM twilio_numbers.numbers_search('AU', number_type => 'mobile', max_results => 1) \gset
SELECT emu.clear_requests();
SELECT state, message, pg_temp.masked(detail) AS detail
FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L, bundle_sid => %L)', :roo, :'au_mobile2',
                         'BU00000000000000000000000000000001'));
SELECT form->>'BundleSid' AS sent FROM emu.log WHERE method = 'POST';
-- US numbers need no bundle: nothing asked
SELECT emu.clear_requests();
SELECT phone_number, bundle_sid FROM twilio_numbers.numbers_purchase(:roo, '+14155550160');
SELECT count(*) FILTER (WHERE path LIKE '/v2/RegulatoryCompliance/%') AS regulatory_requests FROM emu.log;

-- one purchase sends one bundle: numbers that need different ones are refused, nothing sent
SELECT emu.call('POST', '/_emulator/bundles', '{"iso_country": "DE", "number_type": "toll free", "end_user_type": "business"}')->>'sid'
    AS de_tf_bundle \gset
SELECT status FROM twilio_numbers.numbers_bundle_register(:roo, :'de_tf_bundle');
SELECT phone_number AS de_tf FROM twilio_numbers.numbers_search('DE', number_type => 'toll_free', max_results => 1) \gset
SELECT emu.clear_requests();
SELECT state, message, pg_temp.masked(detail) AS detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, ARRAY[%L, %L])', :roo, :'au_mobile2', :'de_tf'));
SELECT count(*) FILTER (WHERE method = 'POST') AS posts FROM emu.log;

-- a rejected bundle is recorded and no longer followed
SELECT emu.call('POST', '/_emulator/bundles', '{"iso_country": "DE", "number_type": "local", "status": "pending-review"}')->>'sid'
    AS rejected \gset
SELECT status FROM twilio_numbers.numbers_bundle_register(:roo, :'rejected');
SELECT emu.call('POST', '/_emulator/bundles/' || :'rejected', '{"status": "twilio-rejected"}')->>'status' AS at_twilio;
SELECT emu.wait_until(format('SELECT status = %L FROM twilio_numbers.bundles WHERE bundle_sid = %L',
                             'twilio-rejected', :'rejected')) AS rejected;
SELECT emu.wait_until(format($$SELECT status = 'done' FROM twilio_numbers.work_queue
                               WHERE kind = 'bundle_poll' AND payload->>'bundle_sid' = %L$$, :'rejected')) AS no_longer_followed;

-- registering: a bundle Twilio does not have, one of another Twilio account, one of another customer
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "Bundles sub"}') ->> 'sid' AS sub \gset
SELECT emu.call('POST', '/_emulator/bundles', format('{"iso_country": "DE", "number_type": "local", "account_sid": "%s"}', :'sub')::jsonb)->>'sid'
    AS sub_bundle \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Someone else') RETURNING account_id AS else_id \gset
SELECT state, pg_temp.masked(message) AS message FROM (VALUES
  (format('SELECT twilio_numbers.numbers_bundle_register(%s, %L)', :roo, 'BU00000000000000000000000000000001')),
  (format('SELECT twilio_numbers.numbers_bundle_register(%s, %L)', :roo, :'sub_bundle')),
  (format('SELECT twilio_numbers.numbers_bundle_register(%s, %L)', :else_id, :'bundle')),
  (format('SELECT twilio_numbers.numbers_bundle_register(%s, %L)', 999999, :'bundle'))) t(s),
  LATERAL emu.try_full(s) r;
SELECT count(*) AS bundles, count(*) FILTER (WHERE twilio_numbers._bundle_settled(status)) AS settled
FROM twilio_numbers.bundles;

-- ---- roles: an application serves its customers; a reporting role reads ----
CREATE ROLE tn_reg_app;
CREATE ROLE tn_reg_report;
SELECT twilio_numbers.grant_application('tn_reg_app');
SELECT twilio_numbers.grant_reporting('tn_reg_report');
GRANT USAGE ON SCHEMA emu TO tn_reg_app, tn_reg_report;   -- the test helpers
SET ROLE tn_reg_app;
SELECT requirement, value FROM twilio_numbers.numbers_requirements('AU', 'local', 'business') ORDER BY 1, 2;
SELECT customer_name, city, iso_country, validated
FROM twilio_numbers.numbers_address_create(:roo, 'Kangaroo Pty', '1 Martin Place', 'Sydney', 'NSW', '2000', 'AU');
SELECT customer_name, dependent_numbers FROM twilio_numbers.numbers_addresses(:roo);
SELECT status, count(*) FROM twilio_numbers.bundles WHERE account_id = :roo GROUP BY 1 ORDER BY 1;
-- ... but it writes none of these tables itself
SELECT emu.try(format(stmt, :roo)) FROM unnest(ARRAY[
  'UPDATE twilio_numbers.bundles SET status = ''twilio-approved'' WHERE account_id = %s',
  'INSERT INTO twilio_numbers.addresses (address_sid, account_id, twilio_account_sid, customer_name, street, city, region, postal_code, iso_country) VALUES (''AD00000000000000000000000000000009'', %s, ''AC00000000000000000000000000000009'', ''x'', ''1 x'', ''x'', ''x'', ''x'', ''AU'')',
  'DELETE FROM twilio_numbers.regulations_cache -- %s',
  'SELECT twilio_numbers._bundle_seen(%s, ''BU00000000000000000000000000000009'', ''{}'')'
]) AS stmt;
RESET ROLE;
SET ROLE tn_reg_report;
SELECT count(*) > 0 AS reads_addresses FROM twilio_numbers.addresses;
SELECT count(*) > 0 AS reads_bundles FROM twilio_numbers.bundles;
SELECT count(*) > 0 AS reads_history FROM twilio_numbers.bundle_history;
SELECT emu.try(format(stmt, :roo)) FROM unnest(ARRAY[
  'SELECT twilio_numbers.numbers_address_create(%s, ''x'', ''1 x'', ''x'', ''x'', ''2000'', ''AU'')',
  'SELECT twilio_numbers.numbers_bundle_register(%s, ''BU00000000000000000000000000000009'')'
]) AS stmt;
RESET ROLE;
DROP OWNED BY tn_reg_app, tn_reg_report;
DROP ROLE tn_reg_app, tn_reg_report;

SELECT emu.queue_drained();
SELECT * FROM twilio_numbers.integrity;
