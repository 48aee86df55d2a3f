--
-- Operations: the version function, pausing writes and billing, dead
-- letters retried one or all, reconcile queueing again a release whose job
-- died, an outage (5xx) not counted towards dead letters, a release not held
-- up by one broken subaccount, what the reporting role may run.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Ops Ltd') RETURNING account_id AS ops \gset
SELECT twilio_numbers.numbers_deposit(:ops, 100);
SELECT count(*) AS bought FROM twilio_numbers.numbers_purchase(:ops,
  ARRAY['+17025550100', '+17025550101', '+17025550102', '+17025550103', '+17025550104', '+17025550105']);

-- ---- versions: the library's and the schema's, equal when all is well ----
SELECT library = schema AS same,
       schema = (SELECT default_version FROM pg_available_extensions WHERE name = 'twilio_numbers') AS current
FROM twilio_numbers.numbers_version();

-- ---- pause_writes: changes at Twilio refuse, releases queue and wait, compensations run ----
-- a rolled-back purchase whose compensation Twilio fails for now (a 5xx: an outage, not counted)
SELECT emu.fault('{"method": "DELETE", "path": "IncomingPhoneNumbers/", "action": "status", "status": 503, "times": 0}');
BEGIN;
SELECT count(*) FROM twilio_numbers.numbers_purchase(:ops, '+17025550109');
ROLLBACK;
SELECT emu.wait_until($$SELECT last_error LIKE 'not counted (Twilio outage): %' FROM twilio_numbers.work_queue
                        WHERE phone_number = '+17025550109'$$) AS outage_not_counted;
SELECT pg_sleep(1);
SELECT kind, status, attempts, last_error FROM twilio_numbers.work_queue WHERE phone_number = '+17025550109';
ALTER SYSTEM SET twilio_numbers.pause_writes = on;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);   -- the reload reaches this session before its next statement
SELECT * FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :ops, '+17025550110'));
SELECT emu.try(format('SELECT twilio_numbers.numbers_update(%s, %L, friendly_name => %L)', :ops, '+17025550100', 'x')) AS update_refused;
SELECT twilio_numbers.numbers_release(:ops, '+17025550101') > 0 AS release_accepted;
-- (the log is cleared first: a retry the cleared fault lets through is logged)
SELECT emu.clear_requests();
SELECT emu.clear_faults();
-- the compensation still runs; the release waits
SELECT emu.wait_until($$SELECT status = 'done' FROM twilio_numbers.work_queue WHERE phone_number = '+17025550109'$$);
SELECT pg_sleep(0.5);
SELECT kind, status FROM twilio_numbers.work_queue WHERE phone_number = '+17025550101';
SELECT method, status, regexp_replace(path, 'PN[0-9a-f]{32}', 'PN…') AS path
FROM emu.log WHERE method <> 'GET' AND status < 500 ORDER BY seq;
ALTER SYSTEM RESET twilio_numbers.pause_writes;
SELECT pg_reload_conf();
SELECT emu.queue_drained();
SELECT phone_number, status FROM twilio_numbers.owned_numbers WHERE phone_number IN ('+17025550101') ORDER BY 1;

-- ---- pause_billing: the worker bills no more; off again, it bills ----
ALTER SYSTEM SET twilio_numbers.pause_billing = on;
ALTER SYSTEM SET twilio_numbers.billing_interval_s = 1;
SELECT pg_reload_conf();
SELECT pg_sleep(1.5);
SELECT count(*) AS worker_runs FROM twilio_numbers.billing_runs WHERE started_by = 'worker' \gset
SELECT pg_sleep(2.5);
SELECT count(*) = :worker_runs AS no_worker_run_while_paused FROM twilio_numbers.billing_runs WHERE started_by = 'worker';
ALTER SYSTEM RESET twilio_numbers.pause_billing;
SELECT pg_reload_conf();
SELECT emu.wait_until(format('SELECT count(*) > %s FROM twilio_numbers.billing_runs WHERE started_by = %L',
                             :worker_runs, 'worker')) AS worker_bills_again;
ALTER SYSTEM RESET twilio_numbers.billing_interval_s;
SELECT pg_reload_conf();

-- ---- dead letters: a refusal counts; retried one by one or all ----
ALTER SYSTEM SET twilio_numbers.queue_max_attempts = 1;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT emu.fault('{"method": "DELETE", "path": "IncomingPhoneNumbers/", "action": "status", "status": 400, "times": 0}');
SELECT twilio_numbers.numbers_release(:ops, '+17025550102') > 0 AS r2, twilio_numbers.numbers_release(:ops, '+17025550103') > 0 AS r3;
SELECT emu.wait_until($$SELECT count(*) = 2 FROM twilio_numbers.queue_dead_letters WHERE phone_number IN ('+17025550102', '+17025550103')$$);
SELECT * FROM emu.try_full($$SELECT twilio_numbers.numbers_retry_dead_letter(-1)$$);
SELECT emu.clear_faults();
-- one retried by a DBA
SELECT twilio_numbers.numbers_retry_dead_letter(job_id) FROM twilio_numbers.queue_dead_letters
WHERE phone_number = '+17025550102';
SELECT emu.queue_drained();
-- the other queued again by reconcile (its row was left releasing)
SELECT count(*) AS findings FROM twilio_numbers.numbers_reconcile() WHERE phone_number LIKE '+1702555010_';
SELECT emu.queue_drained();
SELECT phone_number, kind, status, attempts, payload->>'reason' AS reason FROM twilio_numbers.work_queue
WHERE phone_number IN ('+17025550102', '+17025550103') AND kind = 'release' ORDER BY phone_number, job_id;
SELECT phone_number, status FROM twilio_numbers.owned_numbers WHERE phone_number IN ('+17025550102', '+17025550103') ORDER BY 1;
SELECT count(*) AS dead_letters FROM twilio_numbers.queue_dead_letters WHERE phone_number LIKE '+1702555010_';
-- all at once
SELECT emu.fault('{"method": "DELETE", "path": "IncomingPhoneNumbers/", "action": "status", "status": 400, "times": 0}');
SELECT twilio_numbers.numbers_release(:ops, '+17025550105') > 0 AS r5;
SELECT emu.wait_until($$SELECT count(*) = 1 FROM twilio_numbers.queue_dead_letters WHERE phone_number = '+17025550105'$$);
SELECT emu.clear_faults();
SELECT twilio_numbers.numbers_retry_dead_letters() >= 1 AS retried;
SELECT emu.queue_drained();
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+17025550105';
ALTER SYSTEM RESET twilio_numbers.queue_max_attempts;
SELECT pg_reload_conf();

-- ---- one broken subaccount does not hold up a main-account release ----
INSERT INTO twilio_numbers.accounts (name) VALUES ('Broken sub Ltd') RETURNING account_id AS broken \gset
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "Broken sub"}') ->> 'sid' AS bsub \gset
SELECT twilio_account_sid = :'bsub' AS mapped FROM twilio_numbers.numbers_map_account(:broken, :'bsub');
-- the number is gone from Twilio behind our back (its DELETE will say 404,
-- so the worker looks for it in the other managed accounts) and the
-- subaccount answers 401 to everything
SELECT emu.twilio('DELETE', emu.account() || '/IncomingPhoneNumbers/' ||
                  (SELECT twilio_sid FROM twilio_numbers.owned_numbers WHERE phone_number = '+17025550104') || '.json') IS NULL AS deleted_elsewhere;
SELECT count(*) AS still_at_twilio FROM emu.owned() p WHERE p = '+17025550104';
SELECT emu.fault(format('{"path": "Accounts/%s/", "action": "status", "status": 401, "times": 0}', :'bsub')::jsonb);
SELECT emu.clear_requests();
SELECT twilio_numbers.numbers_release(:ops, '+17025550104') > 0 AS released;
SELECT emu.queue_drained();
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+17025550104';
SELECT count(*) AS dead_letters FROM twilio_numbers.queue_dead_letters WHERE phone_number = '+17025550104';
-- (its home account said 404; the broken subaccount's 401 did not fail the job)
SELECT r->>'method' AS method, (r->>'status')::int AS status,
       CASE WHEN r->>'path' LIKE '%' || :'bsub' || '%' THEN 'broken sub' ELSE 'main' END AS account
FROM emu.requests() r
WHERE r->>'path' LIKE '%' || :'bsub' || '/IncomingPhoneNumbers/PN%'
   OR r->>'path' LIKE '%' || current_setting('twilio_numbers.account_sid') || '/IncomingPhoneNumbers/PN%'
ORDER BY (r->>'seq')::int;
SELECT emu.clear_faults();

-- ---- the reporting role runs every function that only reads the database ----
CREATE ROLE ops_analyst;
SELECT twilio_numbers.grant_reporting('ops_analyst');
GRANT USAGE ON SCHEMA emu TO ops_analyst;   -- the test helpers
SET ROLE ops_analyst;
SELECT count(*) > 0 AS statement FROM twilio_numbers.numbers_statement(:ops);
SELECT count(*) >= 0 AS estimate FROM twilio_numbers.numbers_cost_estimate(:ops, 2);
SELECT count(*) >= 0 AS owned FROM twilio_numbers.numbers_owned(account_id => :ops);
SELECT library = schema AS version FROM twilio_numbers.numbers_version();
SELECT status FROM twilio_numbers.numbers_incarnation();
SELECT emu.try($$SELECT twilio_numbers.numbers_retry_dead_letters()$$) AS retry_refused;
SELECT emu.try($$SELECT twilio_numbers.numbers_make_live()$$) AS make_live_refused;
RESET ROLE;
REVOKE ALL ON ALL TABLES IN SCHEMA twilio_numbers FROM ops_analyst;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM ops_analyst;
REVOKE ALL ON SCHEMA twilio_numbers FROM ops_analyst;
REVOKE ALL ON SCHEMA emu FROM ops_analyst;
DROP ROLE ops_analyst;

-- money conserved
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;
