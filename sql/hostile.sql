--
-- Correct under hostile mixes: each case a randomized run found, pinned
-- down — savepoints and exception blocks, read-only transactions, transfers
-- rolled back then released, who is refunded, grace after an outage, money
-- that is not a number, and arguments Twilio would choke on.
--
CREATE TEMP TABLE saved_prices AS SELECT * FROM twilio_numbers.price_list WHERE iso_country = 'US';
DELETE FROM twilio_numbers.price_list WHERE iso_country = 'US';
INSERT INTO twilio_numbers.price_list VALUES ('US', 'local', 0, 2.50, 'USD'), ('US', 'toll_free', 0, 3.00, 'USD');
INSERT INTO twilio_numbers.accounts (name) VALUES ('Saver') RETURNING account_id AS saver \gset
SELECT twilio_numbers.numbers_deposit(:saver, 3.50);

-- ---- a refused purchase inside a savepoint holds nothing afterwards ----
BEGIN;
SAVEPOINT s;
-- the number is not in Twilio's inventory: refused after its 2.50 were held
SELECT emu.try(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :saver, '+15035550999'));
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS still_in_flight FROM twilio_numbers.inflight WHERE account_id = :saver;
-- so 2.50 of 3.50 still fit
SELECT phone_number, status FROM twilio_numbers.numbers_purchase(:saver, '+15035550100');
COMMIT;
-- one transaction refused over and over in exception blocks (more times than there are
-- in-flight slots): none is kept, and the next purchase goes through
SELECT twilio_numbers.numbers_deposit(:saver, 1.50);   -- balance 2.50
DO $$
DECLARE
    refused int := 0;
BEGIN
    FOR i IN 1 .. 1100 LOOP
        BEGIN
            PERFORM twilio_numbers.numbers_purchase(
                (SELECT account_id FROM twilio_numbers.accounts WHERE name = 'Saver'), '+18005550100');
        EXCEPTION WHEN SQLSTATE 'TN001' THEN
            refused := refused + 1;
        END;
    END LOOP;
    RAISE NOTICE 'refused % times for funds', refused;
    IF EXISTS (SELECT 1 FROM twilio_numbers.inflight) THEN
        RAISE EXCEPTION 'purchases still in flight after their blocks ended';
    END IF;
END $$;
SELECT phone_number FROM twilio_numbers.numbers_purchase(:saver, '+15035550101');
SELECT balance FROM twilio_numbers.accounts WHERE account_id = :saver;

-- ---- nothing changes Twilio from a read-only transaction ----
SELECT emu.clear_requests();
BEGIN READ ONLY;
SELECT * FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :saver, '+15035550102'));
SELECT * FROM emu.try_full(format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)',
                                  :saver, '+15035550100', 'x'));
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_release(%s, %L)', :saver, '+15035550100'),
  format('SELECT twilio_numbers.numbers_trunk_unassign(%s, %L)', :saver, '+15035550100'),
  format('SELECT twilio_numbers.numbers_transfer(%L, %s, %s)', '+15035550100', :saver, :saver + 1),
  format('SELECT twilio_numbers.numbers_hosted_order(%s, %L, %L, %L, %L)', :saver, '+14085559876',
         'it@example.com', '+14085550000', 'AD00000000000000000000000000000001'),
  format('SELECT twilio_numbers.numbers_adopt(%s, %L)', :saver, '+15035550100')
]) AS stmt;
COMMIT;
SELECT count(*) AS requests_sent FROM emu.log WHERE method <> 'GET';

-- ---- a transfer rolled back in a savepoint, then a release: gone from Twilio ----
INSERT INTO twilio_numbers.accounts (name) VALUES ('Payer') RETURNING account_id AS payer \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Elsewhere') RETURNING account_id AS elsewhere \gset
SELECT twilio_numbers.numbers_deposit(:payer, 20);
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "Elsewhere sub"}') ->> 'sid' AS esub \gset
SELECT twilio_account_sid = :'esub' AS mapped FROM twilio_numbers.numbers_map_account(:elsewhere, :'esub');
SELECT count(*) FROM twilio_numbers.numbers_purchase(:payer, ARRAY['+15035550110', '+15035550111']);
BEGIN;
SAVEPOINT s;
SELECT twilio_account_sid = :'esub' AS moved FROM twilio_numbers.numbers_transfer('+15035550110', :payer, :elsewhere);
ROLLBACK TO SAVEPOINT s;
SELECT twilio_numbers.numbers_release(:payer, '+15035550110') > 0 AS refunded;
COMMIT;
SELECT emu.queue_drained();
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+15035550110';
SELECT count(*) AS at_twilio_in_any_account FROM jsonb_array_elements(emu.state()->'numbers') n
WHERE n->>'phone_number' = '+15035550110';

-- ---- transfer, then release: the payer of the period is refunded, no one else ----
SELECT balance AS payer_before FROM twilio_numbers.accounts WHERE account_id = :payer \gset
SELECT balance AS taker_before FROM twilio_numbers.accounts WHERE account_id = :saver \gset
SELECT account_id = :saver AS taken FROM twilio_numbers.numbers_transfer('+15035550111', :payer, :saver);
SELECT twilio_numbers.numbers_release(:saver, '+15035550111') AS refund \gset
SELECT :refund > 0 AS refunded,
       (SELECT balance FROM twilio_numbers.accounts WHERE account_id = :payer) - :payer_before = :refund AS payer_refunded,
       (SELECT balance FROM twilio_numbers.accounts WHERE account_id = :saver) = :taker_before AS taker_unchanged;
SELECT l.account_id = :payer AS to_payer, l.kind FROM twilio_numbers.ledger l
JOIN twilio_numbers.owned_numbers o USING (number_id)
WHERE o.phone_number = '+15035550111' AND l.kind = 'refund';

-- ---- money is a finite amount, for everyone ----
CREATE ROLE tn_hostile_app;
SELECT twilio_numbers.grant_application('tn_hostile_app');
GRANT USAGE ON SCHEMA emu TO tn_hostile_app;
SET ROLE tn_hostile_app;
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_deposit(%s, %L)', :saver, 'NaN'),
  format('SELECT twilio_numbers.numbers_deposit(%s, %L)', :saver, 'Infinity'),
  format('SELECT twilio_numbers.numbers_deposit(%s, %L)', :saver, '1e20'),
  format('UPDATE twilio_numbers.accounts SET credit_limit = %L WHERE account_id = %s', 'NaN', :saver),
  $$INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES ('Unlimited', 'NaN')$$
]) AS stmt;
RESET ROLE;
SELECT emu.try(stmt) FROM unnest(ARRAY[
  $$INSERT INTO twilio_numbers.price_list VALUES ('US', 'mobile', 'NaN', 1, 'USD')$$,
  $$INSERT INTO twilio_numbers.price_list VALUES ('US', 'mobile', 0, 'NaN', 'USD')$$,
  -- (infinity cannot even be stored in a numeric(12,2): the type refuses it, 22003)
  $$INSERT INTO twilio_numbers.price_list VALUES ('US', 'mobile', 0, 'Infinity', 'USD')$$,
  $$SELECT twilio_numbers.numbers_run_billing('infinity')$$,
  $$SELECT twilio_numbers.numbers_run_billing('-infinity')$$
]) AS stmt;
SELECT balance, NOT EXISTS (SELECT FROM twilio_numbers.integrity i WHERE i.account_id = :saver) AS is_ledger
FROM twilio_numbers.accounts WHERE account_id = :saver;
DROP OWNED BY tn_hostile_app;
DROP ROLE tn_hostile_app;

-- ---- arguments Twilio would refuse or misread: refused here, no request ----
SELECT emu.clear_requests();
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT twilio_numbers.numbers_update(%s, %L, voice_url => %L)', :saver, '+15035550100', e'https://a.example/\x01'),
  format('SELECT twilio_numbers.numbers_update(%s, %L, sms_url => %L)', :saver, '+15035550100', e'https://a.example/\x7f'),
  format('SELECT twilio_numbers.numbers_update(%s, %L, sms_url => %L)', :saver, '+15035550100', 'https://?'),
  format('SELECT twilio_numbers.numbers_update(%s, %L, sms_url => %L)', :saver, '+15035550100', 'https://user@:80/x'),
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => '0x25,-0x7a')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => '1e1,1e2')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => ' 37.7,-122.4')$$,
  format('SELECT twilio_numbers.numbers_purchase(%s, %L::text[])', :saver, '{{+15035550130},{+15035550131}}'),
  format('SELECT twilio_numbers.numbers_hosted_cancel(%s, %L)', :saver, ''),
  format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)', :saver, '+15035550100', repeat('é', 65)),
  format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)', :saver, '+15035550100', e'tab\there')
]) AS stmt;
SELECT count(*) AS requests FROM emu.log;
-- characters are counted as Twilio counts them, not as bytes
SELECT char_length(friendly_name) AS characters, octet_length(friendly_name) AS bytes
FROM twilio_numbers.numbers_update(:saver, '+15035550100', friendly_name => repeat('é', 40));
SELECT count(*) AS results
FROM twilio_numbers.numbers_search('US', in_locality => repeat('é', 33), max_results => 1);
SELECT near.phone_number IS NOT NULL AS found_near
FROM twilio_numbers.numbers_search('US', near_lat_long => '37.7749,-122.4194', distance => 50, max_results => 1) near;

-- ---- grace runs from when the debt was found, not from the unpaid period ----
INSERT INTO twilio_numbers.accounts (name) VALUES ('Outage') RETURNING account_id AS outage \gset
SELECT twilio_numbers.numbers_deposit(:outage, 2.50);
SELECT (next_billing_at AT TIME ZONE 'UTC')::date AS due
FROM twilio_numbers.numbers_purchase(:outage, '+15035550120') \gset
-- billing was down: the first pass after the due date comes 20 days late
-- (the passes bill every account; what this one did is read from its row)
SELECT status FROM twilio_numbers.numbers_run_billing((:'due'::date + 20)::timestamp AT TIME ZONE 'UTC');
SELECT status, (past_due_since AT TIME ZONE 'UTC')::date - :'due'::date AS found_days_after_due
FROM twilio_numbers.owned_numbers WHERE phone_number = '+15035550120' AND status <> 'released';
-- six days after it was found: kept; seven: released — once seven days have
-- passed in real time too: these passes are dated in the future, so the one
-- seven days after it was found releases nothing ...
SELECT status FROM twilio_numbers.numbers_run_billing((:'due'::date + 26)::timestamp AT TIME ZONE 'UTC');
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+15035550120' AND status <> 'released';
SELECT status FROM twilio_numbers.numbers_run_billing((:'due'::date + 27)::timestamp AT TIME ZONE 'UTC');
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+15035550120' AND status <> 'released';
-- ... until the debt was really found seven days ago (its pass moved back to
-- seven days before now): then the same pass releases it.  (Moved back by a
-- number of seconds: an interval of days would be applied in the session's
-- time zone, an hour off across a daylight-saving change.)
UPDATE twilio_numbers.owned_numbers
SET past_due_since = past_due_since - make_interval(secs => extract(epoch FROM
        (:'due'::date + 27)::timestamp AT TIME ZONE 'UTC') - extract(epoch FROM now()))
WHERE phone_number = '+15035550120' AND status = 'past_due';
SELECT status FROM twilio_numbers.numbers_run_billing((:'due'::date + 27)::timestamp AT TIME ZONE 'UTC');
SELECT o.status IN ('releasing', 'released') AS released, q.kind, q.payload->>'reason' AS reason
FROM twilio_numbers.owned_numbers o JOIN twilio_numbers.work_queue q USING (number_id)
WHERE o.phone_number = '+15035550120';

DELETE FROM twilio_numbers.price_list WHERE iso_country = 'US';
INSERT INTO twilio_numbers.price_list SELECT * FROM saved_prices;

-- money conserved
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;
