--
-- Selling a German number to a new customer: what Germany requires, the
-- customer's address created at Twilio from SQL, its approved bundle
-- registered, a German local number bought (the bundle taken from the
-- customer's), the address listed with the number that depends on it and
-- refused deletion while it does; Twilio's validation refusal; bad input
-- refused with 22023 before any request.  SIDs print as AD…/BU…/PN….
--
CREATE FUNCTION pg_temp.masked(t text) RETURNS text LANGUAGE sql
AS $$ SELECT regexp_replace(t, '(AD|BU|PN|AC|RN)[0-9a-f]{32}', '\1…', 'g') $$;

INSERT INTO twilio_numbers.accounts (name, currency) VALUES ('Muster GmbH', 'USD') RETURNING account_id AS muster \gset
SELECT twilio_numbers.numbers_deposit(:muster, 50, 'first payment') IS NOT NULL AS deposited;

-- bad input: 22023 before any request
SELECT emu.clear_requests();
SELECT emu.try(s) FROM (VALUES
  (format($$SELECT twilio_numbers.numbers_address_create(%s, '', 'Friedrichstrasse 100', 'Berlin', 'BE', '10117', 'DE')$$, :muster)),
  (format($$SELECT twilio_numbers.numbers_address_create(%s, 'Muster GmbH', 'Friedrichstrasse 100', 'Berlin', 'BE', '10117', 'Germany')$$, :muster)),
  (format($$SELECT twilio_numbers.numbers_address_create(%s, 'Muster GmbH', NULL, 'Berlin', 'BE', '10117', 'DE')$$, :muster)),
  (format($$SELECT twilio_numbers.numbers_address_create(%s, 'Muster GmbH', 'Friedrichstrasse 100', 'Berlin', 'BE', '10117', 'DE', friendly_name => repeat('x', 65))$$, :muster)),
  ($$SELECT twilio_numbers.numbers_address_create(NULL, 'Muster GmbH', 'Friedrichstrasse 100', 'Berlin', 'BE', '10117', 'DE')$$),
  (format($$SELECT twilio_numbers.numbers_address_update(%s, 'AD-not-a-sid', city => 'Hamburg')$$, :muster)),
  (format($$SELECT twilio_numbers.numbers_address_update(%s, 'AD00000000000000000000000000000001', city => '')$$, :muster)),
  (format($$SELECT twilio_numbers.numbers_address_delete(%s, 'BU00000000000000000000000000000001')$$, :muster)),
  ($$SELECT * FROM twilio_numbers.numbers_requirements('Germany')$$),
  ($$SELECT * FROM twilio_numbers.numbers_requirements('DE', 'landline')$$),
  ($$SELECT * FROM twilio_numbers.numbers_requirements('DE', 'local', 'robot')$$),
  (format($$SELECT twilio_numbers.numbers_bundle_register(%s, 'AD00000000000000000000000000000001')$$, :muster))
) t(s);
SELECT count(*) AS requests_sent FROM emu.log;

-- 1. what Germany requires of a business buying a local number
SELECT requirement, name, value FROM twilio_numbers.numbers_requirements('DE', 'local', 'business');

-- 2. the customer's address, created at Twilio (validated by Twilio)
SELECT pg_temp.masked(address_sid) AS address_sid, customer_name, street, city, postal_code, iso_country,
       validated, verified
FROM twilio_numbers.numbers_address_create(:muster, 'Muster GmbH', 'Friedrichstrasse 100', 'Berlin', 'BE',
                                           '10117', 'DE', friendly_name => 'Head office');
SELECT address_sid AS berlin FROM twilio_numbers.addresses WHERE account_id = :muster \gset
SELECT method, pg_temp.masked(path) AS path, form->>'IsoCountry' AS iso_country, status FROM emu.log
WHERE method = 'POST' ORDER BY seq;

-- an address Twilio cannot validate: TN003 with what to check
SELECT state, message, pg_temp.masked(detail) AS detail, hint
FROM emu.try_full(format($$SELECT twilio_numbers.numbers_address_create(%s, 'Muster GmbH', 'Friedrichstrasse 100',
                                   'Berlin', 'BE', '1011', 'DE')$$, :muster));
SELECT count(*) AS addresses FROM twilio_numbers.addresses WHERE account_id = :muster;

-- changed: Twilio validates it again
SELECT street, friendly_name, validated
FROM twilio_numbers.numbers_address_update(:muster, :'berlin', street => 'Friedrichstrasse 101');
SELECT state, message FROM emu.try_full(format($$SELECT twilio_numbers.numbers_address_update(%s, %L, postal_code => 'ABC')$$,
                                               :muster, :'berlin'));
SELECT street, postal_code FROM twilio_numbers.addresses WHERE address_sid = :'berlin';
-- another customer's address is not this one's
INSERT INTO twilio_numbers.accounts (name) VALUES ('Other customer') RETURNING account_id AS other \gset
SELECT state, pg_temp.masked(message) AS message, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_address_update(%s, %L, city => %L)', :other, :'berlin', 'Bonn'));

-- 3. its bundle, created and approved at Twilio, registered here
SELECT emu.call('POST', '/_emulator/bundles', '{"iso_country": "DE", "number_type": "local", "end_user_type": "business",
                "friendly_name": "Muster GmbH DE local"}')->>'sid' AS bundle \gset
SELECT pg_temp.masked(bundle_sid) AS bundle_sid, iso_country, number_type, end_user_type, status, friendly_name
FROM twilio_numbers.numbers_bundle_register(:muster, :'bundle');

-- 4. a German local number: the address given, the bundle taken from the customer's
SELECT phone_number AS de_number FROM twilio_numbers.numbers_search('DE', number_type => 'local', max_results => 1) \gset
SELECT emu.clear_requests();
SELECT phone_number, number_type, iso_country, pg_temp.masked(address_sid) AS address_sid,
       pg_temp.masked(bundle_sid) AS bundle_sid, monthly_price, status
FROM twilio_numbers.numbers_purchase(:muster, :'de_number', address_sid => :'berlin');
SELECT form->>'AddressSid' = :'berlin' AS sent_address, form->>'BundleSid' = :'bundle' AS sent_bundle
FROM emu.log WHERE method = 'POST';

-- 5. the customer's addresses, with the numbers that depend on them
SELECT pg_temp.masked(address_sid) AS address_sid, customer_name, street, city, iso_country, validated,
       dependent_numbers
FROM twilio_numbers.numbers_addresses(:muster);

-- Twilio verifies the address later: its flags read again
SELECT emu.call('POST', '/_emulator/addresses/' || :'berlin', '{"verified": true}')->>'verified' AS verified_at_twilio;
SELECT pg_temp.masked(address_sid) AS address_sid, validated, verified FROM twilio_numbers.numbers_addresses_refresh(:muster);

-- 6. not deleted while the number depends on it (nothing sent), deleted once it is released
SELECT emu.clear_requests();
SELECT state, pg_temp.masked(message) AS message, detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_address_delete(%s, %L)', :muster, :'berlin'));
SELECT count(*) AS requests_sent FROM emu.log;
SELECT twilio_numbers.numbers_release(:muster, :'de_number') >= 0 AS released;
SELECT emu.queue_drained();
SELECT pg_temp.masked(address_sid) AS deleted FROM twilio_numbers.numbers_address_delete(:muster, :'berlin');
SELECT method, pg_temp.masked(path) AS path, status FROM emu.log WHERE method = 'DELETE' ORDER BY seq;
SELECT count(*) AS addresses_left FROM twilio_numbers.numbers_addresses(:muster);
-- one deleted behind our back (at Twilio) leaves the table at the next refresh
SELECT address_sid AS gone FROM twilio_numbers.numbers_address_create(:muster, 'Muster GmbH', 'Alsterufer 1', 'Hamburg',
                                                                      'HH', '20354', 'DE') \gset
SELECT emu.twilio('DELETE', emu.account() || '/Addresses/' || :'gone' || '.json') IS NULL AS deleted_at_twilio;
SET client_min_messages = warning;   -- its NOTICE names the random SID
SELECT count(*) AS refreshed FROM twilio_numbers.numbers_addresses_refresh(:muster);
RESET client_min_messages;
SELECT count(*) AS addresses_left FROM twilio_numbers.addresses WHERE account_id = :muster;
SELECT * FROM twilio_numbers.integrity;
