--
-- Trust model: the application role acts for every customer, so the money
-- rules hold against it too — every change of a credit limit or a status is
-- in account_changes (who, when, old, new), a limit below the debt and the
-- closing of an account that holds numbers are refused, a closed account is
-- never billed — and the README's row-level-security recipe gives each
-- customer a role of its own that sees and buys only for its own account.
--
CREATE ROLE tn_trust_app;
CREATE ROLE tn_trust_report;
SELECT twilio_numbers.grant_application('tn_trust_app');
SELECT twilio_numbers.grant_reporting('tn_trust_report');
GRANT USAGE ON SCHEMA emu TO tn_trust_app, tn_trust_report;

-- ---- the application's reach over money ---------------------------------
SET ROLE tn_trust_app;
INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES ('Trust Co', 20) RETURNING account_id AS t1 \gset
SELECT phone_number, status FROM twilio_numbers.numbers_purchase(:t1, '+12065550160');
SELECT balance < 0 AS in_debt FROM twilio_numbers.accounts WHERE account_id = :t1;
-- a limit below the current debt: refused, with what to do
SELECT * FROM emu.try_full(format('UPDATE twilio_numbers.accounts SET credit_limit = 0.50 WHERE account_id = %s', :t1));
-- lowered to no less than the debt, raised (to anything: the history shows it)
UPDATE twilio_numbers.accounts SET credit_limit = 5 WHERE account_id = :t1;
UPDATE twilio_numbers.accounts SET credit_limit = 999999999 WHERE account_id = :t1;
-- closing an account that holds live numbers: refused, with what to do
SELECT * FROM emu.try_full(format('UPDATE twilio_numbers.accounts SET status = ''closed'' WHERE account_id = %s', :t1));
SELECT twilio_numbers.numbers_deposit(:t1, 10) > 0 AS paid;
SELECT twilio_numbers.numbers_release(:t1, '+12065550160') >= 0 AS released;
UPDATE twilio_numbers.accounts SET status = 'closed' WHERE account_id = :t1;
-- the history is the extension's to write, not the application's
SELECT emu.try(format('INSERT INTO twilio_numbers.account_changes (account_id, changed_by, field) VALUES (%s, ''x'', ''status'')', :t1));
SELECT emu.try(format('DELETE FROM twilio_numbers.account_changes WHERE account_id = %s', :t1));
RESET ROLE;

-- the reporting role reads who changed what, when
SET ROLE tn_trust_report;
SELECT field, old_value, new_value, changed_by, changed_at <= now() AS dated
FROM twilio_numbers.account_changes WHERE account_id = :t1 ORDER BY change_id;
RESET ROLE;

-- a closed account is never billed: one closed behind the rules' back (a
-- DBA with triggers off) while it held a number is skipped by billing
INSERT INTO twilio_numbers.accounts (name) VALUES ('Closed Co') RETURNING account_id AS t2 \gset
SELECT twilio_numbers.numbers_deposit(:t2, 10);
SELECT next_billing_at AS due FROM twilio_numbers.numbers_purchase(:t2, '+12065550161') \gset
SET session_replication_role = replica;
UPDATE twilio_numbers.accounts SET status = 'closed' WHERE account_id = :t2;
RESET session_replication_role;
SELECT balance AS before FROM twilio_numbers.accounts WHERE account_id = :t2 \gset
SELECT status FROM twilio_numbers.numbers_run_billing(:'due'::timestamptz + interval '40 days');
-- (its one monthly fee is the first period's, charged at the purchase)
SELECT balance = :before AS not_billed, (SELECT count(*) FROM twilio_numbers.ledger l
                                        WHERE l.account_id = :t2 AND l.kind = 'monthly_fee') AS monthly_fees
FROM twilio_numbers.accounts WHERE account_id = :t2;
SELECT o.status, o.next_billing_at = :'due' AS period_not_advanced
FROM twilio_numbers.owned_numbers o WHERE o.phone_number = '+12065550161' AND o.status <> 'released';
SET session_replication_role = replica;
UPDATE twilio_numbers.accounts SET status = 'active' WHERE account_id = :t2;
RESET session_replication_role;
SELECT twilio_numbers.numbers_release(:t2, '+12065550161') >= 0 AS released;

-- ---- a role per customer: the README's row-level-security recipe --------
INSERT INTO twilio_numbers.accounts (name) VALUES ('Customer A') RETURNING account_id AS a \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Customer B') RETURNING account_id AS b \gset
SELECT twilio_numbers.numbers_deposit(:a, 10), twilio_numbers.numbers_deposit(:b, 10);
SELECT phone_number FROM twilio_numbers.numbers_purchase(:b, '+12065550162');

CREATE ROLE tn_customers NOLOGIN;
CREATE ROLE tn_cust_a IN ROLE tn_customers;
CREATE ROLE tn_cust_b IN ROLE tn_customers;
CREATE SCHEMA shop;
CREATE TABLE shop.customer_roles (role_name name PRIMARY KEY,
                                  account_id bigint NOT NULL REFERENCES twilio_numbers.accounts);
INSERT INTO shop.customer_roles VALUES ('tn_cust_a', :a), ('tn_cust_b', :b);
GRANT USAGE ON SCHEMA shop, twilio_numbers, emu TO tn_customers;
GRANT USAGE ON SCHEMA shop TO tn_trust_app;
GRANT SELECT ON shop.customer_roles TO tn_customers, tn_trust_app;
GRANT SELECT ON twilio_numbers.accounts, twilio_numbers.owned_numbers, twilio_numbers.ledger TO tn_customers;
ALTER TABLE shop.customer_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE twilio_numbers.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE twilio_numbers.owned_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE twilio_numbers.ledger ENABLE ROW LEVEL SECURITY;
-- a customer sees its own rows; the application and reporting roles see all
CREATE POLICY own ON shop.customer_roles TO tn_customers USING (role_name = current_user);
CREATE POLICY own ON twilio_numbers.accounts FOR SELECT TO tn_customers
    USING (account_id = (SELECT m.account_id FROM shop.customer_roles m WHERE m.role_name = current_user));
CREATE POLICY own ON twilio_numbers.owned_numbers FOR SELECT TO tn_customers
    USING (account_id = (SELECT m.account_id FROM shop.customer_roles m WHERE m.role_name = current_user));
CREATE POLICY own ON twilio_numbers.ledger FOR SELECT TO tn_customers
    USING (account_id = (SELECT m.account_id FROM shop.customer_roles m WHERE m.role_name = current_user));
CREATE POLICY staff ON shop.customer_roles TO tn_trust_app USING (true);
CREATE POLICY staff ON twilio_numbers.accounts TO tn_trust_app, tn_trust_report USING (true) WITH CHECK (true);
CREATE POLICY staff ON twilio_numbers.owned_numbers TO tn_trust_app, tn_trust_report USING (true);
CREATE POLICY staff ON twilio_numbers.ledger TO tn_trust_app, tn_trust_report USING (true);
-- a customer buys through the application's function, for the account its
-- login role maps to (the extension's functions themselves are not granted)
CREATE FUNCTION shop.buy(phone_number text) RETURNS twilio_numbers.owned_numbers
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT twilio_numbers.numbers_purchase(
          (SELECT m.account_id FROM shop.customer_roles m WHERE m.role_name = session_user), phone_number) $$;
ALTER FUNCTION shop.buy(text) OWNER TO tn_trust_app;
REVOKE ALL ON FUNCTION shop.buy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shop.buy(text) TO tn_customers;

SET SESSION AUTHORIZATION tn_cust_a;
SELECT account_id = :a AS own_account, name FROM twilio_numbers.accounts;
SELECT phone_number, account_id = :a AS for_own_account FROM shop.buy('+12065550163');
SELECT phone_number FROM twilio_numbers.owned_numbers WHERE status <> 'released';
SELECT count(*) > 0 AS own_ledger, bool_and(account_id = :a) AS only_own FROM twilio_numbers.ledger;
-- another account's money and numbers are out of reach
SELECT emu.try(format('SELECT twilio_numbers.numbers_purchase(%s, ''+12065550164'')', :b));
SELECT emu.try(format('UPDATE twilio_numbers.accounts SET credit_limit = 100 WHERE account_id = %s', :a));
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION tn_cust_b;
SELECT account_id = :b AS own_account, name FROM twilio_numbers.accounts;
SELECT phone_number FROM twilio_numbers.owned_numbers WHERE status <> 'released';
RESET SESSION AUTHORIZATION;
SELECT a.name, o.phone_number FROM twilio_numbers.owned_numbers o JOIN twilio_numbers.accounts a USING (account_id)
WHERE o.phone_number IN ('+12065550162', '+12065550163') ORDER BY 2;

-- ---- noise that hid signal ------------------------------------------------
-- a deposit that would overflow the balance: a clear 22023, nothing credited
SELECT * FROM emu.try_full(format('SELECT twilio_numbers.numbers_deposit(%s, 999999999999)', :a));
SELECT balance FROM twilio_numbers.accounts WHERE account_id = :a;
-- a country Twilio has no prices for (+7): one pricing request, not one per type
SELECT emu.clear_requests();
SELECT emu.try(format('SELECT twilio_numbers.numbers_purchase(%s, ''+74951234567'')', :a));
SELECT r->>'path' AS path, count(*) FROM emu.requests() r
WHERE r->>'path' LIKE '/v1/PhoneNumbers/Countries/%' GROUP BY 1 ORDER BY 1;
-- a dead letter that a later job did leaves the dead-letter view; its row stays
INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, status, attempts, last_error)
VALUES ('compensate', '+12065550199', 'PN0000000000000000000000000000d1e5', 'dead', 10, 'HTTP 500')
RETURNING job_id AS dead_job \gset
SELECT count(*) AS dead_letters FROM twilio_numbers.queue_dead_letters WHERE job_id = :dead_job;
INSERT INTO twilio_numbers.work_queue (kind, phone_number, twilio_sid, status, payload)
VALUES ('compensate', '+12065550199', 'PN0000000000000000000000000000d1e5', 'done', '{"reason": "reconcile"}');
SELECT count(*) AS dead_letters FROM twilio_numbers.queue_dead_letters WHERE job_id = :dead_job;
SELECT status FROM twilio_numbers.work_queue WHERE job_id = :dead_job;

-- tidy up
DROP POLICY own ON twilio_numbers.accounts;
DROP POLICY own ON twilio_numbers.owned_numbers;
DROP POLICY own ON twilio_numbers.ledger;
DROP POLICY staff ON twilio_numbers.accounts;
DROP POLICY staff ON twilio_numbers.owned_numbers;
DROP POLICY staff ON twilio_numbers.ledger;
ALTER TABLE twilio_numbers.accounts DISABLE ROW LEVEL SECURITY;
ALTER TABLE twilio_numbers.owned_numbers DISABLE ROW LEVEL SECURITY;
ALTER TABLE twilio_numbers.ledger DISABLE ROW LEVEL SECURITY;
SELECT twilio_numbers.numbers_release(:a, '+12065550163') >= 0 AS released_a,
       twilio_numbers.numbers_release(:b, '+12065550162') >= 0 AS released_b;
SELECT emu.queue_drained();
DROP SCHEMA shop CASCADE;
REVOKE ALL ON ALL TABLES IN SCHEMA twilio_numbers FROM tn_trust_app, tn_trust_report, tn_customers;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM tn_trust_app, tn_trust_report;
REVOKE ALL ON SCHEMA twilio_numbers FROM tn_trust_app, tn_trust_report, tn_customers;
REVOKE ALL ON SCHEMA emu FROM tn_trust_app, tn_trust_report, tn_customers;
DROP ROLE tn_cust_a;
DROP ROLE tn_cust_b;
DROP ROLE tn_customers;
DROP ROLE tn_trust_app;
DROP ROLE tn_trust_report;
