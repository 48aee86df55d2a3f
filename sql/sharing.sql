--
-- Sharing a Twilio account: numbers this database did not buy are reported,
-- never touched; a DBA adopts them for customers; which Twilio accounts are
-- managed is the DBA's decision, checked with Twilio.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Reseller HQ') RETURNING account_id AS hq \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Branch') RETURNING account_id AS branch \gset
SELECT twilio_numbers.numbers_deposit(:hq, 50), twilio_numbers.numbers_deposit(:branch, 10);

-- the reseller's own numbers, bought at Twilio before and beside the extension
SELECT emu.twilio('POST', emu.account() || '/IncomingPhoneNumbers.json',
                  '{"PhoneNumber": "+16175550100", "FriendlyName": "Our office main line",
                    "VoiceUrl": "https://pbx.reseller.example/in"}') ->> 'sid' AS office \gset
SELECT emu.twilio('POST', emu.account() || '/IncomingPhoneNumbers.json',
                  '{"PhoneNumber": "+16175550101", "FriendlyName": "Fax line"}') ->> 'sid' AS fax \gset

-- reconcile reports them once and touches nothing
SELECT emu.clear_requests();
SELECT finding, phone_number, twilio_sid = :'office' AS is_office, action, detail->>'friendly_name' AS name
FROM twilio_numbers.numbers_reconcile() WHERE phone_number LIKE '+1617555010_' ORDER BY phone_number;
SELECT count(*) FILTER (WHERE method <> 'GET') AS changes_sent, bool_and(method = 'GET') AS only_looked
FROM emu.log;
SELECT phone_number, friendly_name, capabilities, adoptable_by @> ARRAY[:hq::bigint, :branch::bigint] AS adoptable
FROM twilio_numbers.unmanaged_numbers WHERE phone_number LIKE '+1617555010_' ORDER BY phone_number;
-- again, and after the worker's own passes: still there, not reported twice
SELECT count(*) AS new_findings FROM twilio_numbers.numbers_reconcile() WHERE phone_number LIKE '+1617555010_';
SELECT emu.queue_drained();
SELECT count(*) AS still_at_twilio FROM emu.owned() p WHERE p IN ('+16175550100', '+16175550101');
SELECT count(*) AS drift_rows FROM twilio_numbers.drift WHERE phone_number LIKE '+1617555010_';

-- ---- adoption: the number, as Twilio has it, under a customer; no purchase ----
SELECT emu.clear_requests();
SELECT balance AS before FROM twilio_numbers.accounts WHERE account_id = :hq \gset
SELECT phone_number, status, origin, twilio_sid = :'office' AS same_sid, friendly_name, voice_url,
       capabilities, number_type, setup_price, monthly_price,
       period_start = (now() AT TIME ZONE 'UTC')::date AS billed_from_today
FROM twilio_numbers.numbers_adopt(:hq, '+16175550100');
SELECT method, regexp_replace(path, '^/2010-04-01/Accounts/AC[0-9a-f]{32}', '') AS path, query->>'PhoneNumber' AS phone
FROM emu.log ORDER BY seq;
-- the first period is charged as at a purchase, no setup fee
SELECT kind, amount, memo FROM twilio_numbers.ledger l JOIN twilio_numbers.owned_numbers o USING (number_id)
WHERE o.phone_number = '+16175550100' ORDER BY entry_id;
SELECT balance - :before AS moved FROM twilio_numbers.accounts WHERE account_id = :hq;
SELECT count(*) AS still_listed FROM twilio_numbers.unmanaged_numbers WHERE phone_number = '+16175550100';
-- a period already paid elsewhere: nothing charged, and so nothing refunded on release
SELECT origin, status FROM twilio_numbers.numbers_adopt(:branch, '+16175550101', first_period_paid => true);
SELECT count(*) AS entries FROM twilio_numbers.ledger l JOIN twilio_numbers.owned_numbers o USING (number_id)
WHERE o.phone_number = '+16175550101';
SELECT twilio_numbers.numbers_release(:branch, '+16175550101') AS refund;
SELECT emu.queue_drained();
SELECT '+16175550101' IN (SELECT emu.owned()) AS fax_at_twilio;
-- adopted numbers are reconciled like any other: nothing to report now
SELECT count(*) AS findings FROM twilio_numbers.numbers_reconcile() WHERE phone_number LIKE '+1617555010_';

-- refused, each with its reason, before anything is written
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_adopt(%s, %L)', :branch, '+16175550100'),
  format('SELECT twilio_numbers.numbers_adopt(%s, %L)', :hq, '+16175550199'),
  format('SELECT twilio_numbers.numbers_adopt(%s, %L)', :hq, '+441214960000'),
  format('SELECT twilio_numbers.numbers_adopt(%s, %L, monthly_price => %L)', :hq, '+16175550199', 'NaN'),
  format('SELECT twilio_numbers.numbers_adopt(%s, %L, monthly_price => -1)', :hq, '+16175550199'),
  format('SELECT twilio_numbers.numbers_adopt(999999, %L)', '+16175550199'),
  format('SELECT twilio_numbers.numbers_adopt(%s, %L)', :hq, 'not a number')
]) AS stmt;

-- ---- which Twilio accounts are managed: the DBA's decision, checked ----
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "Branch sub"}') ->> 'sid' AS sub \gset
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_map_account(%s, %L)', :branch, 'AC00000000000000000000000000000bad'),
  format('SELECT twilio_numbers.numbers_map_account(%s, %L)', :branch, 'not a sid'),
  format('SELECT twilio_numbers.numbers_map_account(999999, %L)', :'sub'),
  format('UPDATE twilio_numbers.accounts SET twilio_account_sid = %L WHERE account_id = %s', :'sub', :branch)
]) AS stmt;
SELECT twilio_account_sid IS NULL AS still_main FROM twilio_numbers.accounts WHERE account_id = :branch;
SELECT twilio_account_sid = :'sub' AS mapped FROM twilio_numbers.numbers_map_account(:branch, :'sub');
-- a number the reseller keeps in that subaccount is reported, and adoptable by the branch only
SELECT emu.twilio('POST', '/2010-04-01/Accounts/' || :'sub' || '/IncomingPhoneNumbers.json',
                  '{"PhoneNumber": "+16175550102"}') ->> 'sid' IS NOT NULL AS bought_in_sub;
SELECT finding, phone_number, detail->>'account_sid' = :'sub' AS in_sub
FROM twilio_numbers.numbers_reconcile() WHERE phone_number = '+16175550102';
SELECT adoptable_by = ARRAY[:branch::bigint] AS branch_only FROM twilio_numbers.unmanaged_numbers
WHERE phone_number = '+16175550102';
SELECT emu.try(format('SELECT twilio_numbers.numbers_adopt(%s, %L)', :hq, '+16175550102'));
SELECT twilio_account_sid = :'sub' AS in_sub, origin FROM twilio_numbers.numbers_adopt(:branch, '+16175550102');
-- back to the main account (NULL)
SELECT twilio_account_sid IS NULL AS main_again FROM twilio_numbers.numbers_map_account(:branch, NULL);

-- ---- an account Twilio cannot list is reported; the others are still reconciled ----
SELECT emu.fault(format('{"method": "GET", "path": "Accounts/%s/IncomingPhoneNumbers.json", "action": "status", "status": 500, "times": 0}', :'sub')::jsonb);
-- a number of ours deleted at Twilio behind our back, in the main account
SELECT emu.twilio('DELETE', emu.account() || '/IncomingPhoneNumbers/' || :'office' || '.json') IS NULL AS deleted;
-- and one moved into the subaccount behind our back: no listing shows it, a look-up by its SID finds it
SELECT twilio_sid AS moved FROM twilio_numbers.numbers_purchase(:hq, '+16175550104') \gset
SELECT emu.twilio('POST', emu.account() || '/IncomingPhoneNumbers/' || :'moved' || '.json',
                  format('{"AccountSid": "%s"}', :'sub')::jsonb) ->> 'account_sid' = :'sub' AS moved_to_sub;
SELECT finding, phone_number, detail->>'account_sid' = :'sub' AS sub_unreachable,
       detail->>'moved_to' = :'sub' AS found_in_sub, action
FROM twilio_numbers.numbers_reconcile()
WHERE finding = 'account_unreachable' OR phone_number IN ('+16175550100', '+16175550104') ORDER BY finding;
-- the subaccount's numbers were not judged from a missing list
SELECT status, twilio_account_sid = :'sub' AS in_sub
FROM twilio_numbers.owned_numbers WHERE phone_number = '+16175550102' AND status <> 'released';
SELECT emu.clear_faults();
SELECT emu.queue_drained();
SELECT n->>'account_sid' = current_setting('twilio_numbers.account_sid') AS moved_back_home
FROM jsonb_array_elements(emu.state()->'numbers') n WHERE n->>'phone_number' = '+16175550104';

-- money conserved
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;
