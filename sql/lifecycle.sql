--
-- After the purchase: configuration, trunks, transfers, release; rollbacks
-- of each are undone at Twilio by the worker.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Hooli') RETURNING account_id AS hooli \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Pied Piper') RETURNING account_id AS piper \gset
SELECT twilio_numbers.numbers_deposit(:hooli, 100), twilio_numbers.numbers_deposit(:piper, 100);
SELECT phone_number FROM twilio_numbers.numbers_purchase(:hooli, ARRAY['+12125550100', '+12125550101', '+12125550102']);

-- a rolled-back purchase: Twilio bought it, the worker releases it, nothing charged
SELECT balance AS before FROM twilio_numbers.accounts WHERE account_id = :hooli \gset
BEGIN;
SELECT phone_number, status FROM twilio_numbers.numbers_purchase(:hooli, '+12125550103');
SELECT '+12125550103' IN (SELECT emu.owned()) AS at_twilio_before_commit;
ROLLBACK;
SELECT emu.queue_drained();
SELECT '+12125550103' IN (SELECT emu.owned()) AS at_twilio_after_rollback;
SELECT kind, status, phone_number FROM twilio_numbers.work_queue WHERE phone_number = '+12125550103';
SELECT balance = :before AS nothing_charged FROM twilio_numbers.accounts WHERE account_id = :hooli;

-- a purchase inside a savepoint that rolls back, in a transaction that commits
BEGIN;
SAVEPOINT s;
SELECT phone_number FROM twilio_numbers.numbers_purchase(:hooli, '+12125550104');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT emu.queue_drained();
SELECT '+12125550104' IN (SELECT emu.owned()) AS at_twilio_after_savepoint_rollback;

-- ---- numbers_update ----------------------------------------------------
SELECT emu.clear_requests();
SELECT phone_number, friendly_name, voice_url, voice_method, sms_url
FROM twilio_numbers.numbers_update(:hooli, '+12125550100', friendly_name => 'Front desk',
                                   voice_url => 'https://pbx.example.com/in', voice_method => 'GET');
SELECT method, regexp_replace(path, 'PN[0-9a-f]+', 'PN…') AS path, form FROM emu.log ORDER BY seq;
-- Twilio agrees
SELECT r->>'friendly_name' AS twilio_friendly_name, r->>'voice_url' AS twilio_voice_url
FROM (SELECT emu.twilio('GET', emu.account() || '/IncomingPhoneNumbers/' || twilio_sid || '.json') r
      FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550100' AND status = 'active') x;
-- nothing to change: no request
SELECT emu.clear_requests();
SELECT friendly_name FROM twilio_numbers.numbers_update(:hooli, '+12125550100');
SELECT count(*) AS requests FROM emu.log;
-- '' clears a URL
SELECT voice_url IS NULL AS cleared FROM twilio_numbers.numbers_update(:hooli, '+12125550100', voice_url => '');

-- an update that rolls back: Twilio is put back in step
BEGIN;
SELECT friendly_name FROM twilio_numbers.numbers_update(:hooli, '+12125550100', friendly_name => 'Rolled back name');
ROLLBACK;
SELECT emu.queue_drained();
SELECT kind, status FROM twilio_numbers.work_queue WHERE kind = 'resync' AND phone_number = '+12125550100';
SELECT r->>'friendly_name' AS twilio_friendly_name
FROM (SELECT emu.twilio('GET', emu.account() || '/IncomingPhoneNumbers/' || twilio_sid || '.json') r
      FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550100' AND status = 'active') x;

-- update errors
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_update(%s, %L, sms_url => %L)', :hooli, '+12125550100', 'not a url'),
  format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)', :piper, '+12125550100', 'x'),
  format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)', :hooli, '+12125559999', 'x'),
  format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)', 999999, '+12125550100', 'x')
]) AS stmt;

-- ---- trunks (Trunking PhoneNumbers) ---------------------------------------------------
SELECT emu.twilio('POST', '/v1/Trunks', '{"FriendlyName": "Production SIP Trunk"}') ->> 'sid' AS trunk \gset
SELECT emu.twilio('POST', '/v1/Trunks', '{"FriendlyName": "Backup SIP Trunk"}') ->> 'sid' AS trunk2 \gset
SELECT emu.clear_requests();
SELECT phone_number, trunk_sid = :'trunk' AS on_trunk
FROM twilio_numbers.numbers_trunk_assign(:hooli, '+12125550101', :'trunk');
SELECT method, regexp_replace(regexp_replace(path, 'TK[0-9a-f]+', 'TK…'), 'PN[0-9a-f]+', 'PN…') AS path,
       form ? 'PhoneNumberSid' AS sends_sid
FROM emu.log ORDER BY seq;
SELECT t->'phone_numbers' AS trunk_numbers_at_twilio
FROM jsonb_array_elements(emu.state()->'trunks') t WHERE t->>'sid' = :'trunk';
SELECT phone_number FROM twilio_numbers.numbers_trunk_numbers(:'trunk');
-- moving it to another trunk
SELECT trunk_sid = :'trunk2' AS moved FROM twilio_numbers.numbers_trunk_assign(:hooli, '+12125550101', :'trunk2');
SELECT t->>'friendly_name' AS trunk, t->'phone_numbers' AS numbers
FROM jsonb_array_elements(emu.state()->'trunks') t ORDER BY 1;
-- a rolled-back assignment is undone at Twilio
BEGIN;
SELECT trunk_sid = :'trunk' AS on_first FROM twilio_numbers.numbers_trunk_assign(:hooli, '+12125550101', :'trunk');
ROLLBACK;
SELECT emu.queue_drained();
SELECT t->>'friendly_name' AS trunk, t->'phone_numbers' AS numbers
FROM jsonb_array_elements(emu.state()->'trunks') t ORDER BY 1;
SELECT trunk_sid IS NULL AS unassigned FROM twilio_numbers.numbers_trunk_unassign(:hooli, '+12125550101');
SELECT emu.try(format('SELECT twilio_numbers.numbers_trunk_unassign(%s, %L)', :hooli, '+12125550101'));
SELECT emu.try(format('SELECT twilio_numbers.numbers_trunk_assign(%s, %L, %L)', :hooli, '+12125550101', 'TKnope'));
-- buying straight onto a trunk
SELECT phone_number, trunk_sid = :'trunk' AS on_trunk
FROM twilio_numbers.numbers_purchase(:hooli, '+12125550105', trunk_sid => :'trunk');
SELECT t->'phone_numbers' AS trunk_numbers_at_twilio
FROM jsonb_array_elements(emu.state()->'trunks') t WHERE t->>'sid' = :'trunk';

-- ---- transfers -----------------------------------------------------------
-- between accounts of the same Twilio account: ledger-neutral, no request
SELECT emu.clear_requests();
SELECT count(*) AS ledger_before FROM twilio_numbers.ledger \gset
SELECT phone_number, account_id = :piper AS now_piper, origin
FROM twilio_numbers.numbers_transfer('+12125550102', :hooli, :piper);
SELECT count(*) AS requests FROM emu.log;
SELECT count(*) - :ledger_before AS new_ledger_entries FROM twilio_numbers.ledger;
-- to an account mapped to a Twilio subaccount: moved at Twilio too (the AccountSid update)
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "Pied Piper sub"}') ->> 'sid' AS sub \gset
SELECT twilio_account_sid = :'sub' AS mapped FROM twilio_numbers.numbers_map_account(:piper, :'sub');
SELECT phone_number, account_id = :piper AS now_piper, twilio_account_sid = :'sub' AS in_subaccount
FROM twilio_numbers.numbers_transfer('+12125550100', :hooli, :piper);
SELECT n->>'account_sid' = :'sub' AS twilio_moved_it
FROM jsonb_array_elements(emu.state()->'numbers') n WHERE n->>'phone_number' = '+12125550100';
-- a rolled-back transfer: the worker moves it back
BEGIN;
SELECT twilio_account_sid = :'sub' AS in_subaccount
FROM twilio_numbers.numbers_transfer('+12125550105', :hooli, :piper);
ROLLBACK;
SELECT emu.queue_drained();
SELECT n->>'account_sid' = :'sub' AS still_in_subaccount
FROM jsonb_array_elements(emu.state()->'numbers') n WHERE n->>'phone_number' = '+12125550105';
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_transfer(%L, %s, %s)', '+12125550105', :hooli, :hooli),
  format('SELECT twilio_numbers.numbers_transfer(%L, %s, %s)', '+12125550105', :piper, :hooli),
  format('SELECT twilio_numbers.numbers_transfer(%L, %s, %s)', '+12125550105', :hooli, 999999)
]) AS stmt;

-- ---- release ---------------------------------------------------------------
SELECT emu.clear_requests();
SELECT balance AS before FROM twilio_numbers.accounts WHERE account_id = :hooli \gset
-- the rule, independently: the days after today until the period's end,
-- of the period's days, of the monthly price, to the cent
SELECT round(monthly_price * ((next_billing_at AT TIME ZONE 'UTC')::date - (now() AT TIME ZONE 'UTC')::date - 1)
             / ((next_billing_at AT TIME ZONE 'UTC')::date - period_start), 2) AS expected_refund
FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550101' AND status = 'active' \gset
BEGIN;
-- bought today: the whole period but today is refunded, by the rule
SELECT twilio_numbers.numbers_release(:hooli, '+12125550101') = :expected_refund AS refund_by_the_rule,
       :expected_refund > 0 AS something_refunded;
SELECT l.kind, l.amount = :expected_refund AS amount_ok, a.balance - :before = :expected_refund AS balance_moved
FROM twilio_numbers.ledger l JOIN twilio_numbers.accounts a USING (account_id)
WHERE l.entry_id = (SELECT max(entry_id) FROM twilio_numbers.ledger);
-- Twilio is only told after commit, by the worker
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550101';
SELECT pg_sleep(0.3);
SELECT count(*) AS requests_before_commit FROM emu.log;
COMMIT;
SELECT emu.queue_drained();
SELECT status, released_at IS NOT NULL AS released_at_set
FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550101';
SELECT method, regexp_replace(path, 'PN[0-9a-f]+', 'PN…') AS path, status FROM emu.log ORDER BY seq;
SELECT '+12125550101' IN (SELECT emu.owned()) AS still_at_twilio;

-- a rolled-back release: refund, status and job vanish together
SELECT balance AS before FROM twilio_numbers.accounts WHERE account_id = :hooli \gset
BEGIN;
SELECT twilio_numbers.numbers_release(:hooli, '+12125550105') > 0 AS refunded;
ROLLBACK;
SELECT o.status, a.balance = :before AS balance_unchanged
FROM twilio_numbers.owned_numbers o JOIN twilio_numbers.accounts a USING (account_id)
WHERE o.phone_number = '+12125550105' AND o.status <> 'released';
SELECT count(*) AS release_jobs FROM twilio_numbers.work_queue WHERE phone_number = '+12125550105' AND kind = 'release';

-- releasing twice, or another account's number, or an unknown one
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_release(%s, %L)', :hooli, '+12125550101'),
  format('SELECT twilio_numbers.numbers_release(%s, %L)', :hooli, '+12125550102'),
  format('SELECT twilio_numbers.numbers_release(%s, %L)', :hooli, '+12125559999'),
  format('SELECT twilio_numbers.numbers_release(%s, %L)', 999999, '+12125550105'),
  format('SELECT twilio_numbers.numbers_release(%s, %L)', :hooli, 'twelve')
]) AS stmt;
BEGIN;
SELECT twilio_numbers.numbers_release(:hooli, '+12125550105') > 0;
SELECT emu.try(format('SELECT twilio_numbers.numbers_release(%s, %L)', :hooli, '+12125550105'));
ROLLBACK;

-- a release Twilio keeps refusing: retried with backoff, then a dead letter
-- (a refusal counts; an outage — no reply, 5xx, 401 — would not)
ALTER SYSTEM SET twilio_numbers.queue_max_attempts = 3;
SELECT pg_reload_conf();
SELECT emu.fault('{"method": "DELETE", "path": "IncomingPhoneNumbers/", "action": "status", "status": 400, "times": 0}');
SELECT twilio_numbers.numbers_release(:hooli, '+12125550105') > 0 AS refunded;
SELECT emu.wait_until($$SELECT EXISTS (SELECT 1 FROM twilio_numbers.queue_dead_letters WHERE phone_number = '+12125550105')$$);
SELECT kind, phone_number, attempts, last_error FROM twilio_numbers.queue_dead_letters WHERE phone_number = '+12125550105';
SELECT count(*) >= 3 AS deletes_tried FROM emu.log WHERE method = 'DELETE' AND status = 400;
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550105';
ALTER SYSTEM RESET twilio_numbers.queue_max_attempts;
SELECT pg_reload_conf();
SELECT emu.clear_faults();
-- the cause fixed, a DBA retries the dead letter: it runs at once
SELECT twilio_numbers.numbers_retry_dead_letter(job_id) FROM twilio_numbers.queue_dead_letters
WHERE phone_number = '+12125550105';
SELECT emu.wait_until($$SELECT status = 'released' FROM twilio_numbers.owned_numbers WHERE phone_number = '+12125550105'$$);
SELECT count(*) AS dead_letters FROM twilio_numbers.queue_dead_letters WHERE phone_number = '+12125550105';

-- money conserved
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;
