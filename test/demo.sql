-- test/demo.sql — what test/demo runs: the catalog, against the emulator.
\pset footer on
CREATE EXTENSION IF NOT EXISTS twilio_numbers;

\echo
\echo '== Where can we buy numbers?'
SELECT * FROM twilio_numbers.numbers_countries() ORDER BY iso_country;

\echo '== What do US numbers cost? (Twilio''s price, and ours with a 20% markup)'
SET twilio_numbers.markup_percent = 20;
SELECT * FROM twilio_numbers.numbers_pricing('US');

\echo '== Our own price list overrides the markup for US local numbers'
INSERT INTO twilio_numbers.price_list (iso_country, number_type, setup_price, monthly_price)
VALUES ('US', 'local', 1.00, 2.50)
ON CONFLICT (iso_country, number_type) DO UPDATE SET setup_price = 1.00, monthly_price = 2.50;
SELECT * FROM twilio_numbers.numbers_pricing('US');

\echo '== Five San Francisco numbers that can receive SMS and MMS'
SELECT phone_number, friendly_name, locality, region, postal_code, sms, mms, voice,
       setup_price, monthly_price, currency
FROM twilio_numbers.numbers_search(country => 'US', area_code => '415', sms => true, mms => true,
                                   max_results => 5);

\echo '== Vanity search: numbers containing "CALL" (2255 on the keypad)'
SELECT phone_number, locality, region
FROM twilio_numbers.numbers_search(country => 'US', contains => 'CALL', max_results => 5);

\echo '== Numbers near downtown Chicago (within 10 miles)'
SELECT phone_number, locality, latitude, longitude
FROM twilio_numbers.numbers_search(country => 'US', near_lat_long => '41.8781,-87.6298',
                                   distance => 10, max_results => 3);

\echo '== UK mobile and German local numbers (the latter need an address)'
SELECT phone_number, number_type, iso_country, address_requirements, monthly_price, currency
FROM twilio_numbers.numbers_search(country => 'GB', number_type => 'mobile', max_results => 2)
UNION ALL
SELECT phone_number, number_type, iso_country, address_requirements, monthly_price, currency
FROM twilio_numbers.numbers_search(country => 'DE', max_results => 2);

\echo '== A bad argument never reaches Twilio'
\set VERBOSITY verbose
SELECT * FROM twilio_numbers.numbers_search(country => 'USA');
\set VERBOSITY default

\echo '== The Twilio call log (what was sent, how it went, how long it took)'
SELECT seq, method, status, twilio_code, round(duration_ms::numeric, 1) AS ms,
       regexp_replace(path, '/Accounts/AC[0-9a-f]+', '/Accounts/AC…') AS path
FROM twilio_numbers.call_log ORDER BY seq;

\echo
\echo '== A customer account, funded through the ledger'
INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES ('Acme Dental', 0) RETURNING account_id, name, balance;
SELECT twilio_numbers.numbers_deposit(account_id => 1, amount => 25.00, memo => 'card payment') AS balance;

\echo '== Buy two numbers in one transaction (setup fee and first month debited)'
SELECT phone_number, status, friendly_name, monthly_price, setup_price, period_start, next_billing_at
FROM twilio_numbers.numbers_purchase(account_id => 1,
                                     phone_numbers => ARRAY['+14155550100', '+14155550101'],
                                     friendly_name => 'Front desk',
                                     sms_url => 'https://app.example.com/sms');

\echo '== A purchase that rolls back: Twilio bought it, the worker releases it, nothing is charged'
BEGIN;
SELECT phone_number, status FROM twilio_numbers.numbers_purchase(1, '+14155550102');
ROLLBACK;
SELECT pg_sleep(1);
SELECT kind, phone_number, status, attempts FROM twilio_numbers.work_queue WHERE phone_number = '+14155550102';

\echo '== Release one: prorated refund now, the DELETE at Twilio after commit'
SELECT twilio_numbers.numbers_release(1, '+14155550101') AS refund;
SELECT pg_sleep(1);

\echo '== The ledger and the balance (always equal)'
SELECT entry_id, kind, amount, memo FROM twilio_numbers.ledger WHERE account_id = 1 ORDER BY entry_id;
SELECT account_name, numbers, monthly_cost, currency, balance, next_billing_at
FROM twilio_numbers.account_monthly_cost;

\echo '== Owned numbers per account'
SELECT account_name, phone_number, friendly_name, status, monthly_fee, next_billing_at
FROM twilio_numbers.account_numbers;

\echo '== The background worker'
SELECT pid, database, state, activity, last_reconcile_at IS NOT NULL AS reconciled, jobs_done, last_error
FROM twilio_numbers.worker_status;
