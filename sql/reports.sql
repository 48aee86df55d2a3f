--
-- Reports for customers: owned numbers with the Active Numbers filters, the cost
-- of the next months, a monthly statement whose totals are the ledger's;
-- and transfers between Twilio subaccounts both ways, ledgers unchanged.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Report Co') RETURNING account_id AS r \gset
INSERT INTO twilio_numbers.accounts (name) VALUES ('Report Co West') RETURNING account_id AS w \gset
SELECT twilio_numbers.numbers_deposit(:r, 40, 'opening deposit');
SELECT count(*) FROM twilio_numbers.numbers_purchase(:r, ARRAY['+13105550100', '+13105550101', '+13105550102'],
                                                     friendly_name => 'LA office');
SELECT phone_number AS tollfree FROM twilio_numbers.numbers_search('US', number_type => 'toll_free', max_results => 1) \gset
SELECT number_type FROM twilio_numbers.numbers_purchase(:r, :'tollfree', friendly_name => 'Hotline');
SELECT emu.twilio('POST', '/v1/Trunks', '{"FriendlyName": "Reports trunk"}') ->> 'sid' AS trunk \gset
SELECT trunk_sid IS NOT NULL FROM twilio_numbers.numbers_trunk_assign(:r, '+13105550101', :'trunk');

-- ---- filters (friendly name, number pattern, origin, beta, capabilities, trunk, status) ----
SELECT phone_number = :'tollfree' AS is_tollfree, friendly_name, number_type
FROM twilio_numbers.numbers_owned(account_id => :r);
SELECT phone_number = :'tollfree' AS is_tollfree FROM twilio_numbers.numbers_owned(account_id => :r, friendly_name => 'Hotline');
SELECT phone_number FROM twilio_numbers.numbers_owned(account_id => :r, phone_number => '310555010*');
SELECT number_type FROM twilio_numbers.numbers_owned(account_id => :r, phone_number => '+18');
SELECT count(*) FROM twilio_numbers.numbers_owned(account_id => :r, origin => 'purchased');
SELECT count(*) FROM twilio_numbers.numbers_owned(account_id => :r, origin => 'hosted');
SELECT phone_number, beta, capabilities FROM twilio_numbers.owned_numbers WHERE account_id = :r ORDER BY 1;
SELECT count(*) AS beta_true FROM twilio_numbers.numbers_owned(account_id => :r, beta => true);
SELECT count(*) AS beta_false FROM twilio_numbers.numbers_owned(account_id => :r, beta => false);
SELECT phone_number FROM twilio_numbers.numbers_owned(account_id => :r, capabilities => '{fax}') ORDER BY 1;
SELECT phone_number FROM twilio_numbers.numbers_owned(account_id => :r, capabilities => '{sms,mms}') ORDER BY 1;
SELECT phone_number FROM twilio_numbers.numbers_owned(account_id => :r, trunk_sid => :'trunk');
SELECT count(*) FROM twilio_numbers.numbers_owned(account_id => :r, number_type => 'toll_free', iso_country => 'us');
SELECT emu.try(stmt) FROM unnest(ARRAY[
  $$SELECT * FROM twilio_numbers.numbers_owned(phone_number => '310-555')$$,
  $$SELECT * FROM twilio_numbers.numbers_owned(origin => 'bought')$$,
  $$SELECT * FROM twilio_numbers.numbers_owned(status => 'gone')$$,
  $$SELECT * FROM twilio_numbers.numbers_owned(capabilities => '{telepathy}')$$
]) AS stmt;

-- ---- what the next months will cost ----
SELECT month = (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date AS next_month,
       charges, amount, currency
FROM twilio_numbers.numbers_cost_estimate(:r) LIMIT 1;
SELECT count(*) AS months, sum(charges) AS charges, sum(amount) AS amount,
       bool_and(charges = 4) AS four_numbers_each_month
FROM twilio_numbers.numbers_cost_estimate(:r, months => 6);
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format('SELECT * FROM twilio_numbers.numbers_cost_estimate(%s, 0)', :r),
  format('SELECT * FROM twilio_numbers.numbers_cost_estimate(%s, 121)', :r),
  'SELECT * FROM twilio_numbers.numbers_cost_estimate(999999)'
]) AS stmt;

-- ---- the monthly statement: opening balance, every entry with its number, closing balance ----
-- bought and released the same day: the refund is round(2.00 x (N - 1) / N, 2) for a
-- period of N days, N computed here independently of the extension's own rule
SELECT round(2.00 * (n - 1) / n, 2) AS expected_refund
FROM (SELECT ((now() AT TIME ZONE 'UTC')::date + interval '1 month')::date - (now() AT TIME ZONE 'UTC')::date AS n) p \gset
BEGIN;  -- (until COMMIT the worker cannot finish the release: the status filter sees it)
SELECT twilio_numbers.numbers_release(:r, '+13105550102') = :expected_refund AS refund_as_computed;
SELECT status, count(*) FROM twilio_numbers.owned_numbers WHERE account_id = :r GROUP BY 1 ORDER BY 1;
SELECT count(*) AS active FROM twilio_numbers.numbers_owned(account_id => :r, status => 'active');
SELECT phone_number FROM twilio_numbers.numbers_owned(account_id => :r, status => 'releasing');
COMMIT;
SELECT line > 0 AND line < 2147483647 AS is_entry, kind, phone_number, amount, balance
FROM twilio_numbers.numbers_statement(:r) WHERE kind NOT IN ('refund', 'closing balance') ORDER BY line;
SELECT kind, phone_number,
       amount = CASE kind WHEN 'refund' THEN :expected_refund ELSE 30.35 + :expected_refund END AS amount_as_expected,
       balance = 30.35 + :expected_refund AS balance_as_expected
FROM twilio_numbers.numbers_statement(:r) WHERE kind IN ('refund', 'closing balance') ORDER BY line;
-- its totals are the ledger's
SELECT (SELECT balance FROM twilio_numbers.numbers_statement(:r) WHERE kind = 'closing balance')
     = (SELECT balance FROM twilio_numbers.accounts WHERE account_id = :r) AS closing_is_balance,
       (SELECT amount FROM twilio_numbers.numbers_statement(:r) WHERE kind = 'closing balance')
     = (SELECT sum(amount) FROM twilio_numbers.ledger WHERE account_id = :r
        AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC')::timestamp AT TIME ZONE 'UTC') AS month_total_is_ledger;
-- last month: nothing happened then, opening = closing = 0
SELECT kind, amount, balance
FROM twilio_numbers.numbers_statement(:r, (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date);
SELECT emu.try('SELECT * FROM twilio_numbers.numbers_statement(999999)');

-- ---- transfer to a subaccount and back: Twilio follows, ledgers do not move ----
SELECT emu.twilio('POST', '/2010-04-01/Accounts.json', '{"FriendlyName": "West"}') ->> 'sid' AS west \gset
SELECT twilio_account_sid = :'west' AS mapped FROM twilio_numbers.numbers_map_account(:w, :'west');
SELECT count(*) AS ledger_before, sum(amount) AS sum_before FROM twilio_numbers.ledger WHERE account_id IN (:r, :w) \gset
SELECT account_id = :w AS now_west, twilio_account_sid = :'west' AS in_west, origin
FROM twilio_numbers.numbers_transfer('+13105550100', :r, :w);
SELECT n->>'account_sid' = :'west' AS twilio_in_west FROM jsonb_array_elements(emu.state()->'numbers') n
WHERE n->>'phone_number' = '+13105550100';
SELECT account_id = :r AS back_home, twilio_account_sid = current_setting('twilio_numbers.account_sid') AS in_main
FROM twilio_numbers.numbers_transfer('+13105550100', :w, :r);
SELECT n->>'account_sid' = current_setting('twilio_numbers.account_sid') AS twilio_in_main
FROM jsonb_array_elements(emu.state()->'numbers') n WHERE n->>'phone_number' = '+13105550100';
SELECT count(*) = :ledger_before AS no_new_entries, sum(amount) = :sum_before AS sums_unchanged
FROM twilio_numbers.ledger WHERE account_id IN (:r, :w);
-- the transferred number is updated and released in its Twilio account
SELECT friendly_name FROM twilio_numbers.numbers_update(:r, '+13105550100', friendly_name => 'Back home');
