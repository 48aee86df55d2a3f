--
-- Roles: an application calls the functions but cannot write the tables;
-- a reporting role can only read.
--
CREATE ROLE tn_application;
CREATE ROLE tn_reporting;
SELECT twilio_numbers.grant_application('tn_application');
SELECT twilio_numbers.grant_reporting('tn_reporting');
GRANT USAGE ON SCHEMA emu TO tn_application, tn_reporting;   -- the test helpers

-- the application: creates an account, funds it, buys, reads its reports
SET ROLE tn_application;
INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES ('App Customer', 5) RETURNING account_id AS app_acct \gset
SELECT twilio_numbers.numbers_deposit(:app_acct, 10);
SELECT phone_number, status FROM twilio_numbers.numbers_purchase(:app_acct, '+12065550100');
SELECT account_name, phone_number, status FROM twilio_numbers.account_numbers WHERE account_id = :app_acct;
SELECT numbers, monthly_cost FROM twilio_numbers.account_monthly_cost WHERE account_id = :app_acct;
UPDATE twilio_numbers.accounts SET name = 'App Customer Inc' WHERE account_id = :app_acct;
-- ... but it writes no money or number table directly, and cannot mint money
SELECT emu.try(format(stmt, :app_acct)) FROM unnest(ARRAY[
  'UPDATE twilio_numbers.accounts SET balance = 1000 WHERE account_id = %s',
  'INSERT INTO twilio_numbers.ledger (account_id, amount, kind) VALUES (%s, 1000, ''deposit'')',
  'UPDATE twilio_numbers.owned_numbers SET monthly_price = 0 WHERE account_id = %s',
  'DELETE FROM twilio_numbers.owned_numbers WHERE account_id = %s',
  'INSERT INTO twilio_numbers.work_queue (kind) VALUES (''release'') -- %s',
  'UPDATE twilio_numbers.price_list SET monthly_price = 0 -- %s',
  'SELECT * FROM twilio_numbers.numbers_reconcile() -- %s',
  'SELECT * FROM twilio_numbers.work_queue -- %s',
  'SELECT * FROM twilio_numbers.call_log -- %s'
]) AS stmt;
RESET ROLE;

-- the reporting role reads everything, changes nothing, calls nothing that acts
SET ROLE tn_reporting;
SELECT count(*) > 0 AS reads_accounts FROM twilio_numbers.accounts;
SELECT count(*) > 0 AS reads_numbers FROM twilio_numbers.account_numbers;
SELECT count(*) > 0 AS reads_ledger FROM twilio_numbers.ledger;
SELECT count(*) >= 0 AS reads_queue FROM twilio_numbers.queue;
SELECT count(*) > 0 AS reads_call_log FROM twilio_numbers.call_log;
SELECT count(*) = 1 AS reads_worker_status FROM twilio_numbers.worker_status;
SELECT count(*) >= 0 AS reads_inflight FROM twilio_numbers.inflight;
SELECT count(*) >= 0 AS reads_drift FROM twilio_numbers.drift_report;
SELECT emu.try(stmt) FROM unnest(ARRAY[
  $$INSERT INTO twilio_numbers.accounts (name) VALUES ('x')$$,
  $$UPDATE twilio_numbers.accounts SET name = 'x'$$,
  $$SELECT twilio_numbers.numbers_deposit(1, 1)$$,
  $$SELECT twilio_numbers.numbers_purchase(1, '+12065550101')$$,
  $$SELECT twilio_numbers.numbers_release(1, '+12065550100')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US')$$
]) AS stmt;
RESET ROLE;

-- tidy up: a role with grants must lose them before it can go
SELECT twilio_numbers.numbers_release(:app_acct, '+12065550100') > 0 AS released;
REVOKE ALL ON ALL TABLES IN SCHEMA twilio_numbers FROM tn_application, tn_reporting;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM tn_application, tn_reporting;
REVOKE ALL ON SCHEMA twilio_numbers FROM tn_application, tn_reporting;
REVOKE ALL ON SCHEMA emu FROM tn_application, tn_reporting;
DROP ROLE tn_application;
DROP ROLE tn_reporting;
