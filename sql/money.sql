--
-- Accounts, deposits and the ledger: balance = sum of the ledger, always.
--
-- a plain INSERT creates an account; the balance starts at 0
INSERT INTO twilio_numbers.accounts (name) VALUES ('Acme Telecom') RETURNING name, currency, balance, credit_limit, status;
SELECT account_id AS acme FROM twilio_numbers.accounts WHERE name = 'Acme Telecom' \gset
INSERT INTO twilio_numbers.accounts (name, currency, credit_limit) VALUES ('Globex', 'EUR', 25) RETURNING account_id AS globex \gset
-- a balance given on INSERT is ignored: only the ledger makes one
INSERT INTO twilio_numbers.accounts (name, balance) VALUES ('Cheater', 1000) RETURNING name, balance;
SELECT emu.try(stmt) FROM unnest(ARRAY[
  $$INSERT INTO twilio_numbers.accounts (name, currency) VALUES ('Bad currency', 'usd')$$,
  $$INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES ('Bad limit', -5)$$,
  $$INSERT INTO twilio_numbers.accounts (name) VALUES ('')$$
]) AS stmt;

-- deposits go through the ledger and return the new balance
SELECT twilio_numbers.numbers_deposit(:acme, 50);
SELECT twilio_numbers.numbers_deposit(:acme, 12.34, 'wire transfer 7781');
SELECT twilio_numbers.numbers_deposit(account_id => :globex, amount => 5);

-- bad deposits: 22023 / P0002 / 55000, nothing written
SELECT emu.try(format(stmt, :acme)) FROM unnest(ARRAY[
  'SELECT twilio_numbers.numbers_deposit(%s, 0)',
  'SELECT twilio_numbers.numbers_deposit(%s, -10)',
  'SELECT twilio_numbers.numbers_deposit(%s, 1.005)',
  'SELECT twilio_numbers.numbers_deposit(%s, NULL)',
  'SELECT twilio_numbers.numbers_deposit(999999 + 0 * %s, 10)'
]) AS stmt;
INSERT INTO twilio_numbers.accounts (name, status) VALUES ('Closed Co', 'closed') RETURNING account_id AS closed \gset
SELECT emu.try(format('SELECT twilio_numbers.numbers_deposit(%s, 10)', :closed));

SELECT a.name, l.amount, l.kind, l.memo FROM twilio_numbers.ledger l JOIN twilio_numbers.accounts a USING (account_id)
WHERE account_id IN (:acme, :globex) ORDER BY entry_id;
SELECT name, balance FROM twilio_numbers.accounts WHERE account_id IN (:acme, :globex, :closed) ORDER BY account_id;

-- the balance moves only through the ledger
UPDATE twilio_numbers.accounts SET balance = 1000000 WHERE account_id = :acme;
SELECT emu.try(format($$UPDATE twilio_numbers.accounts SET currency = 'GBP' WHERE account_id = %s$$, :acme));
-- other columns may change
UPDATE twilio_numbers.accounts SET name = 'Acme Telecom Ltd', credit_limit = 10 WHERE account_id = :acme;

-- the ledger is append-only
UPDATE twilio_numbers.ledger SET amount = 1000 WHERE account_id = :acme;
DELETE FROM twilio_numbers.ledger WHERE account_id = :acme;
TRUNCATE twilio_numbers.ledger;
-- entries are checked: sign by kind, a fee names its number, no zero amounts
SELECT emu.try(format(stmt, :acme)) FROM unnest(ARRAY[
  $$INSERT INTO twilio_numbers.ledger (account_id, amount, kind) VALUES (%s, 5, 'setup_fee')$$,
  $$INSERT INTO twilio_numbers.ledger (account_id, amount, kind) VALUES (%s, -5, 'deposit')$$,
  $$INSERT INTO twilio_numbers.ledger (account_id, amount, kind) VALUES (%s, 0, 'adjustment')$$,
  $$INSERT INTO twilio_numbers.ledger (account_id, amount, kind) VALUES (%s, 1, 'bonus')$$,
  $$INSERT INTO twilio_numbers.ledger (account_id, amount, kind) VALUES (%s, -1, 'monthly_fee')$$
]) AS stmt;
-- a DBA's adjustment is a ledger entry like any other, and may not overdraw
INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo) VALUES (:acme, -2.34, 'adjustment', 'goodwill correction');
SELECT emu.try(format($$INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo) VALUES (%s, -1000, 'adjustment', 'too much')$$, :acme));

-- a statement with entries for several accounts moves each balance once
INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo)
VALUES (:acme, 1.00, 'adjustment', 'a'), (:globex, 2.00, 'adjustment', 'b'), (:acme, 3.00, 'adjustment', 'c');

-- the invariant
SELECT a.name, a.balance, coalesce(sum(l.amount), 0) AS ledger_sum,
       a.balance = coalesce(sum(l.amount), 0) AS equal
FROM twilio_numbers.accounts a LEFT JOIN twilio_numbers.ledger l USING (account_id)
WHERE a.account_id IN (:acme, :globex, :closed)
GROUP BY a.account_id ORDER BY a.account_id;
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;

-- the period rule and proration (more in billing_dates)
SELECT d AS period_start, twilio_numbers.period_end(d, extract(day FROM d)::int) AS period_end
FROM unnest(ARRAY['2027-01-15', '2027-01-31', '2028-01-31', '2027-12-31', '2027-04-30']::date[]) d;
SELECT twilio_numbers.period_end('2027-02-28', 31) AS after_feb_anchor_31,
       twilio_numbers.period_end('2027-02-28', 30) AS after_feb_anchor_30;
-- 31-day period, released on day 6: 25 days left of 31
SELECT twilio_numbers.prorated_refund(100, '2025-01-15', '2025-02-15', '2025-01-20') AS seed_001_example,
       twilio_numbers.prorated_refund(1.15, '2027-01-15', '2027-02-15', '2027-01-15') AS same_day,
       twilio_numbers.prorated_refund(1.15, '2027-01-15', '2027-02-15', '2027-02-14') AS last_day,
       twilio_numbers.prorated_refund(1.15, '2027-01-15', '2027-02-15', '2027-03-01') AS after_end;
