--
-- Messaging Services and emergency addresses: a customer's US number put
-- into a Messaging Service, listed and taken out; Twilio's rules (one
-- service per number, 400 numbers, SMS capability) refused before any
-- request, and Twilio's own refusal mapped; a rollback, a savepoint and a
-- lost reply; the reports of SMS numbers in no service and of voice numbers
-- without a registered emergency address; a release that must remove the
-- emergency address first; bad input before any request; the grants.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Acme Dental') RETURNING account_id AS acme \gset
SELECT twilio_numbers.numbers_deposit(:acme, 100) AS balance;
-- the reseller's Messaging Services, created at Twilio (console or API)
SELECT emu.twilio('POST', '/v1/Services', '{"FriendlyName": "Acme Dental reminders"}')->>'sid' AS svc \gset
SELECT emu.twilio('POST', '/v1/Services', '{"FriendlyName": "Acme Dental marketing"}')->>'sid' AS other_svc \gset

-- ---- Putting a US number into a Messaging Service (README) ----------------
SELECT phone_number, sms, mms, voice
FROM twilio_numbers.numbers_search(country => 'US', area_code => '206', contains => '555012%', sms => true,
                                   max_results => 3);
SELECT phone_number, status
FROM twilio_numbers.numbers_purchase(:acme, ARRAY['+12065550121', '+12065550122', '+12065550123']);
-- SMS-capable US local numbers in no Messaging Service: their SMS will not reach US carriers
SELECT account_name, phone_number FROM twilio_numbers.sms_numbers_without_service
WHERE account_id = :acme ORDER BY phone_number;
SELECT emu.clear_requests();
SELECT phone_number, messaging_service_sid = :'svc' AS in_reminders_service
FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550121', :'svc');
SELECT phone_number, messaging_service_sid = :'svc' AS in_reminders_service
FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550122', :'svc');
SELECT phone_number, friendly_name, status FROM twilio_numbers.numbers_messaging_numbers(:'svc');
SELECT account_name, phone_number FROM twilio_numbers.sms_numbers_without_service
WHERE account_id = :acme ORDER BY phone_number;
-- what was sent, and what Twilio holds
SELECT method, regexp_replace(path, '(MG|PN)[0-9a-f]{32}', '\1…', 'g') AS path,
       regexp_replace(form->>'PhoneNumberSid', '[0-9a-f]{32}', '…') AS phone_number_sid, status
FROM emu.log ORDER BY seq;
SELECT p->>'phone_number' AS at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'svc' || '/PhoneNumbers')->'phone_numbers') p
ORDER BY 1;
-- the same service again: nothing to do, nothing sent
SELECT emu.clear_requests();
SELECT phone_number FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550121', :'svc');
SELECT count(*) AS requests FROM emu.log;

-- ---- Twilio's rules, refused before any request ---------------------------
-- one Messaging Service per number (Twilio's 21712)
SELECT state, regexp_replace(message, 'MG[0-9a-f]{32}', 'MG…', 'g') AS message,
       regexp_replace(detail, '(MG|PN)[0-9a-f]{32}', '\1…', 'g') AS detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)',
                                  :acme, '+12065550121', :'other_svc'));
-- SMS capability needed (21715): +12065550120 has voice only
SELECT phone_number, status FROM twilio_numbers.numbers_purchase(:acme, '+12065550120');
SELECT 'sms' = ANY (capabilities) AS sms FROM twilio_numbers.owned_numbers WHERE phone_number = '+12065550120' AND status = 'active';
SELECT emu.clear_requests();
SELECT state, regexp_replace(message, 'MG[0-9a-f]{32}', 'MG…', 'g') AS message,
       regexp_replace(detail, '(MG|PN)[0-9a-f]{32}', '\1…', 'g') AS detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)',
                                  :acme, '+12065550120', :'svc'));
-- at most 400 numbers in a service (21714): 400 rows in the service (made
-- up in this transaction, which rolls back) and the next one is refused
BEGIN;
INSERT INTO twilio_numbers.owned_numbers (account_id, phone_number, monthly_price, currency, billing_anchor_day,
                                          period_start, next_billing_at, messaging_service_sid, capabilities)
SELECT :acme, '+1999555' || lpad(i::text, 4, '0'), 1, 'USD', 1, '2026-01-01', '2100-01-01', :'svc', '{voice,sms}'
FROM generate_series(1, 398) i;
SELECT count(*) AS in_service FROM twilio_numbers.numbers_messaging_numbers(:'svc');
SELECT state, regexp_replace(message, 'MG[0-9a-f]{32}', 'MG…', 'g') AS message, detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)',
                         :acme, '+12065550123', :'svc'));
ROLLBACK;
SELECT count(*) AS requests FROM emu.log;

-- Twilio's own refusal: the number was put into another service behind our
-- back (the row does not know): Twilio's 21712 comes back as the same error
SELECT twilio_sid AS sid3 FROM twilio_numbers.owned_numbers WHERE phone_number = '+12065550123' AND status = 'active' \gset
SELECT emu.twilio('POST', '/v1/Services/' || :'other_svc' || '/PhoneNumbers', jsonb_build_object('PhoneNumberSid', :'sid3'))->>'service_sid' = :'other_svc' AS put_elsewhere;
SELECT state, regexp_replace(message, 'MG[0-9a-f]{32}', 'MG…', 'g') AS message,
       regexp_replace(detail, '(MG|PN)[0-9a-f]{32}', '\1…', 'g') AS detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)',
                                  :acme, '+12065550123', :'svc'));
-- the failed call's intent is settled like a rolled-back one: the worker
-- makes sure the number is not in the service the call touched
SELECT emu.queue_drained();
SELECT emu.wait_until($$SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue
                                           WHERE phone_number = '+12065550123' AND status = 'pending')$$) AS resync_over;
SELECT kind, status, payload->>'other_service_sid' = :'svc' AS touched_reminders
FROM twilio_numbers.work_queue WHERE phone_number = '+12065550123' ORDER BY job_id;
SELECT count(*) AS in_other_service_at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'other_svc' || '/PhoneNumbers')->'phone_numbers') p;
-- reconcile finds the difference (the row says no service) and puts Twilio
-- back in step with the row
SELECT finding, phone_number, detail->>'messaging_service_sid' AS ours, detail->>'at_twilio' = :'other_svc' AS at_twilio_in_marketing,
       action
FROM twilio_numbers.numbers_reconcile() WHERE phone_number LIKE '+1206555012_';
SELECT emu.queue_drained();
SELECT count(*) AS in_other_service_at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'other_svc' || '/PhoneNumbers')->'phone_numbers') p;

-- ---- rollbacks, a savepoint, a lost reply -------------------------------
-- a rolled-back assignment: Twilio had added it; the worker takes it out
BEGIN;
SELECT phone_number, messaging_service_sid IS NOT NULL AS assigned
FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550123', :'svc');
SELECT kind, phone_number FROM twilio_numbers.inflight WHERE phone_number = '+12065550123';
ROLLBACK;
SELECT emu.queue_drained();
SELECT p->>'phone_number' AS at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'svc' || '/PhoneNumbers')->'phone_numbers') p
ORDER BY 1;
-- a rolled-back unassignment: the worker puts it back
BEGIN;
SELECT phone_number, messaging_service_sid IS NULL AS unassigned
FROM twilio_numbers.numbers_messaging_unassign(:acme, '+12065550122');
ROLLBACK;
SELECT emu.queue_drained();
SELECT p->>'phone_number' AS at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'svc' || '/PhoneNumbers')->'phone_numbers') p
ORDER BY 1;
-- a savepoint rolled back, then another service, committed
BEGIN;
SAVEPOINT a;
SELECT phone_number FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550123', :'svc');
ROLLBACK TO SAVEPOINT a;
SELECT phone_number FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550123', :'other_svc');
COMMIT;
SELECT emu.queue_drained();
SELECT p->>'phone_number' AS in_reminders_at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'svc' || '/PhoneNumbers')->'phone_numbers') p
ORDER BY 1;
SELECT p->>'phone_number' AS in_marketing_at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'other_svc' || '/PhoneNumbers')->'phone_numbers') p;
SELECT messaging_service_sid = :'other_svc' AS row_in_marketing
FROM twilio_numbers.owned_numbers WHERE phone_number = '+12065550123' AND status = 'active';
-- the reply to the add is lost: the number is looked up, found, the call succeeds
SELECT (twilio_numbers.numbers_messaging_unassign(:acme, '+12065550123')).messaging_service_sid IS NULL AS unassigned;
SELECT emu.clear_requests();
SELECT emu.fault('{"method": "POST", "path": "/PhoneNumbers$", "action": "reset_after"}');
SELECT phone_number, messaging_service_sid = :'svc' AS in_reminders_service
FROM twilio_numbers.numbers_messaging_assign(:acme, '+12065550123', :'svc');
SELECT r->>'method' AS method, regexp_replace(r->>'path', '(MG|PN)[0-9a-f]{32}', '\1…', 'g') AS path,
       r->>'fault' AS fault, r->>'status' AS status
FROM emu.requests() r ORDER BY (r->>'seq')::int;
SELECT emu.clear_faults();

-- ---- a number in a service does not move to another Twilio account ---------
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "Acme West"}')->>'sid' AS west_sid \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Acme West') RETURNING account_id AS west \gset
SELECT twilio_account_sid = :'west_sid' AS mapped FROM twilio_numbers.numbers_map_account(:west, :'west_sid');
SELECT emu.clear_requests();
SELECT state, regexp_replace(message, 'MG[0-9a-f]{32}', 'MG…', 'g') AS message,
       regexp_replace(detail, 'AC[0-9a-f]{32}', 'AC…', 'g') AS detail, hint
FROM emu.try_full(format('SELECT twilio_numbers.numbers_transfer(%L, %s, %s)', '+12065550123', :acme, :west));
SELECT count(*) AS requests FROM emu.log;
-- a number of a customer in a subaccount: its Messaging Services are that subaccount's
SELECT twilio_numbers.numbers_deposit(:west, 20) AS west_balance;
SELECT phone_number, twilio_account_sid = :'west_sid' AS in_west_subaccount
FROM twilio_numbers.numbers_purchase(:west, '+12065550124');
SELECT emu.clear_requests();
SELECT state, regexp_replace(message, 'AC[0-9a-f]{32}', 'AC…', 'g') AS message, detail
FROM emu.try_full(format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)', :west, '+12065550124', :'svc'));
SELECT count(*) AS requests FROM emu.log;

-- ---- take a number out; a release leaves its service with it --------------
SELECT phone_number, messaging_service_sid FROM twilio_numbers.numbers_messaging_unassign(:acme, '+12065550123');
SELECT * FROM emu.try_full(format('SELECT twilio_numbers.numbers_messaging_unassign(%s, %L)', :acme, '+12065550123'));
SELECT twilio_numbers.numbers_release(:acme, '+12065550122') >= 0 AS released;
SELECT emu.queue_drained();
SELECT phone_number FROM twilio_numbers.numbers_messaging_numbers(:'svc');
SELECT p->>'phone_number' AS at_twilio
FROM jsonb_array_elements(emu.twilio('GET', '/v1/Services/' || :'svc' || '/PhoneNumbers')->'phone_numbers') p
ORDER BY 1;
SELECT account_name, phone_number FROM twilio_numbers.sms_numbers_without_service
WHERE account_id = :acme ORDER BY phone_number;

-- ---- emergency addresses --------------------------------------------------
-- a Canadian voice number with its emergency address: Twilio's status kept on the row
SELECT phone_number, emergency_address_sid, emergency_status, emergency_address_status
FROM twilio_numbers.numbers_purchase(:acme, '+16045550120', emergency_address_sid => 'AD00000000000000000000000000000604');
SELECT account_name, phone_number, iso_country, emergency_address_sid, emergency_address_status
FROM twilio_numbers.voice_numbers_without_emergency_address WHERE account_id = :acme ORDER BY phone_number;
SELECT phone_number, emergency_address_status
FROM twilio_numbers.numbers_update(:acme, '+12065550121', emergency_address_sid => 'AD00000000000000000000000000000206');
SELECT account_name, phone_number, iso_country, emergency_address_status
FROM twilio_numbers.voice_numbers_without_emergency_address WHERE account_id = :acme ORDER BY phone_number;
-- Twilio's registration fails later (the emulator's control plays Twilio):
-- reconcile's listing brings the row's status up to date, and the report has it
SELECT emu.call('POST', '/_emulator/numbers/' || twilio_sid, '{"emergency_address_status": "registration-failure"}')->>'emergency_address_status' AS at_twilio
FROM twilio_numbers.owned_numbers WHERE phone_number = '+12065550121' AND status = 'active';
SELECT count(*) AS findings_for_acme FROM twilio_numbers.numbers_reconcile() WHERE phone_number LIKE '+1206555012_';
SELECT emu.queue_drained();
SELECT phone_number, emergency_address_sid, emergency_address_status
FROM twilio_numbers.owned_numbers WHERE phone_number = '+12065550121' AND status = 'active';
SELECT account_name, phone_number, iso_country, emergency_address_status
FROM twilio_numbers.voice_numbers_without_emergency_address WHERE account_id = :acme ORDER BY phone_number;
-- a release: Twilio refuses while the emergency address is registered; the
-- worker removes it and releases
SELECT emu.clear_requests();
SELECT twilio_numbers.numbers_release(:acme, '+16045550120') >= 0 AS released;
SELECT emu.queue_drained();
SELECT method, regexp_replace(path, 'PN[0-9a-f]{32}', 'PN…') AS path, form, status FROM emu.log ORDER BY seq;
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+16045550120' ORDER BY number_id DESC LIMIT 1;
SELECT '+16045550120' IN (SELECT emu.owned()) AS at_twilio;

-- ---- bad input: 22023, nothing sent ---------------------------------------
SELECT emu.clear_requests();
SELECT what, emu.try(s) AS outcome
FROM (VALUES ('malformed service', format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)', :acme, '+12065550121', 'MGnot-a-sid')),
             ('a trunk SID', format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)', :acme, '+12065550121', 'TK00000000000000000000000000000000')),
             ('NULL service', format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, NULL)', :acme, '+12065550121')),
             ('empty service', format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)', :acme, '+12065550121', '')),
             ('not E.164', format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)', :acme, '206-555-0121', :'svc')),
             ('NULL account', format('SELECT twilio_numbers.numbers_messaging_assign(NULL, %L, %L)', '+12065550121', :'svc')),
             ('unassign NULL number', format('SELECT twilio_numbers.numbers_messaging_unassign(%s, NULL)', :acme)),
             ('list: malformed', 'SELECT twilio_numbers.numbers_messaging_numbers(''MG12'')'),
             ('list: NULL', 'SELECT twilio_numbers.numbers_messaging_numbers(NULL)')) v(what, s);
SELECT emu.try(format('SELECT twilio_numbers.numbers_messaging_assign(%s, %L, %L)', :acme, '+12065559999', :'svc'));
SELECT count(*) AS requests FROM emu.log;

-- ---- grants ---------------------------------------------------------------
CREATE ROLE tn_msg_app;
CREATE ROLE tn_msg_analyst;
SELECT twilio_numbers.grant_application('tn_msg_app');
SELECT twilio_numbers.grant_reporting('tn_msg_analyst');
SELECT f, has_function_privilege('tn_msg_app', f, 'EXECUTE') AS app, has_function_privilege('tn_msg_analyst', f, 'EXECUTE') AS analyst
FROM unnest(ARRAY['twilio_numbers.numbers_messaging_assign(bigint,text,text)',
                  'twilio_numbers.numbers_messaging_unassign(bigint,text)',
                  'twilio_numbers.numbers_messaging_numbers(text)',
                  'twilio_numbers._reconcile_messaging(text)']) f;
SELECT v, has_table_privilege('tn_msg_analyst', v, 'SELECT') AS analyst
FROM unnest(ARRAY['twilio_numbers.sms_numbers_without_service',
                  'twilio_numbers.voice_numbers_without_emergency_address']) v;
-- the base URL is a superuser's setting
SET ROLE tn_msg_app;
SET twilio_numbers.messaging_url = 'http://127.0.0.1:1';
RESET ROLE;
REVOKE ALL ON ALL TABLES IN SCHEMA twilio_numbers FROM tn_msg_app, tn_msg_analyst;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM tn_msg_app, tn_msg_analyst;
REVOKE ALL ON SCHEMA twilio_numbers FROM tn_msg_app, tn_msg_analyst;
DROP ROLE tn_msg_app;
DROP ROLE tn_msg_analyst;
