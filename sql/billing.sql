--
-- Monthly billing: the month-end rule, catch-up in order, one charge per
-- period, past-due, reactivation, and release after the grace period.
--
-- The test's dates must lie in the future whatever the date of the run, so
-- that the worker's own passes (as of now) never bill them; numbers_run_billing
-- bills "months ahead".  They are written as dates of 2027 (a common year) and
-- 2028 (a leap year) and moved by shift_years, the smallest multiple of 4 that
-- puts 2027 after the current year (a leap year stays one, until 2100); what
-- the test shows is moved back, so it reads the same in any year.
--
SELECT set_config('emu.shift_years',
                  (4 * ceil(greatest(extract(year FROM now() AT TIME ZONE 'UTC') + 1 - 2027, 0) / 4))::text,
                  false) IS NOT NULL AS shifted;
-- a test date or instant, moved into the future; and a date moved back to show it
CREATE FUNCTION emu.d(d date) RETURNS date LANGUAGE sql STABLE
AS $$ SELECT (d + make_interval(years => current_setting('emu.shift_years')::int))::date $$;
CREATE FUNCTION emu.t(t timestamptz) RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT ((t AT TIME ZONE 'UTC') + make_interval(years => current_setting('emu.shift_years')::int))
             AT TIME ZONE 'UTC' $$;
CREATE FUNCTION emu.shown(d date) RETURNS date LANGUAGE sql STABLE
AS $$ SELECT (d - make_interval(years => current_setting('emu.shift_years')::int))::date $$;
INSERT INTO twilio_numbers.accounts (name) VALUES ('Billing Co') RETURNING account_id AS acct \gset
SELECT twilio_numbers.numbers_deposit(:acct, 100);

-- make a number look bought on day d (period d .. period_end(d))
CREATE FUNCTION emu.backdate(p_phone text, test_day date) RETURNS void LANGUAGE sql AS $$
  WITH x AS (SELECT emu.d(test_day) AS d)
  UPDATE twilio_numbers.owned_numbers
  SET purchased_at = d::timestamp AT TIME ZONE 'UTC', period_start = d,
      billing_anchor_day = extract(day FROM d),
      next_billing_at = twilio_numbers.period_end(d, extract(day FROM d)::int)::timestamp AT TIME ZONE 'UTC'
  FROM x WHERE phone_number = p_phone AND status <> 'released';
$$;
-- the monthly fees of a number, in order
CREATE FUNCTION emu.fees(p_phone text) RETURNS TABLE (period_start date, period_end date, amount numeric)
LANGUAGE sql AS $$
  SELECT emu.shown(l.period_start), emu.shown(l.period_end), l.amount FROM twilio_numbers.ledger l
  JOIN twilio_numbers.owned_numbers o USING (number_id)
  WHERE o.phone_number = p_phone AND l.kind = 'monthly_fee' AND l.memo = 'monthly fee'
  ORDER BY l.entry_id;
$$;

SELECT count(*) FROM twilio_numbers.numbers_purchase(:acct, ARRAY[
  '+13055550100', '+13055550101', '+13055550102', '+13055550103', '+13055550104', '+13055550105']);
SELECT emu.backdate('+13055550100', '2027-01-31');   -- anchor 31
SELECT emu.backdate('+13055550101', '2027-01-30');   -- anchor 30
SELECT emu.backdate('+13055550102', '2028-01-29');   -- anchor 29, leap year
SELECT emu.backdate('+13055550103', '2028-02-29');   -- leap day
SELECT emu.backdate('+13055550104', '2027-02-28');   -- anchor 28
SELECT emu.backdate('+13055550105', '2027-12-31');   -- over the year's end
SELECT phone_number, emu.shown(period_start) AS period_start, billing_anchor_day,
       emu.shown((next_billing_at AT TIME ZONE 'UTC')::date) AS next_billing
FROM twilio_numbers.owned_numbers WHERE account_id = :acct ORDER BY phone_number;

-- nothing is due before the first period ends
SELECT numbers_charged, periods_charged, amount FROM twilio_numbers.numbers_run_billing(emu.t('2027-02-27 23:59:59+00'));

-- billing as of 2028-07-01 catches every missed period up, oldest first
SELECT status, numbers_charged, periods_charged, amount, past_due, reactivated, released
FROM twilio_numbers.numbers_run_billing(emu.t('2028-07-01 00:00:00+00'));
SELECT * FROM emu.fees('+13055550100');   -- Jan 31 -> Feb 28 -> Mar 31 -> Apr 30 ...
SELECT * FROM emu.fees('+13055550101') LIMIT 3;   -- Jan 30 -> Feb 28 -> Mar 30
SELECT * FROM emu.fees('+13055550102') LIMIT 3;   -- Jan 29 -> Feb 29 (leap) -> Mar 29
SELECT * FROM emu.fees('+13055550103') LIMIT 3;   -- Feb 29 -> Mar 29 -> Apr 29
SELECT * FROM emu.fees('+13055550104') LIMIT 3;   -- Feb 28 -> Mar 28
SELECT * FROM emu.fees('+13055550105') LIMIT 3;   -- Dec 31 -> Jan 31 -> Feb 29 -> Mar 31
SELECT phone_number, status, emu.shown(period_start) AS period_start,
       emu.shown((next_billing_at AT TIME ZONE 'UTC')::date) AS next_billing
FROM twilio_numbers.owned_numbers WHERE account_id = :acct ORDER BY phone_number;

-- the same pass again, and an earlier one: nothing more is charged
SELECT numbers_charged, periods_charged, amount FROM twilio_numbers.numbers_run_billing(emu.t('2028-07-01 00:00:00+00'));
SELECT numbers_charged, periods_charged, amount FROM twilio_numbers.numbers_run_billing(emu.t('2028-03-01 00:00:00+00'));
-- one charge per (number, period), enforced by a unique index
SELECT count(*) AS duplicates FROM (SELECT number_id, period_start FROM twilio_numbers.ledger
  WHERE kind = 'monthly_fee' GROUP BY 1, 2 HAVING count(*) > 1) d;
SELECT emu.try($$INSERT INTO twilio_numbers.ledger (account_id, amount, kind, number_id, period_start, period_end)
SELECT account_id, -1.15, 'monthly_fee', number_id, period_start, period_end
FROM twilio_numbers.ledger WHERE kind = 'monthly_fee' AND memo = 'monthly fee' LIMIT 1$$);

-- proration within those periods: whole UTC days, the release day used
SELECT ps, pe, released_on, twilio_numbers.prorated_refund(1.15, ps, pe, released_on) AS refund
FROM (VALUES ('2027-01-31'::date, '2027-02-28'::date, '2027-01-31'::date),
             ('2027-01-31', '2027-02-28', '2027-02-14'),
             ('2027-02-28', '2027-03-31', '2027-03-01'),
             ('2028-02-29', '2028-03-29', '2028-03-28'),
             ('2027-12-31', '2028-01-31', '2028-01-01'),
             ('2028-01-31', '2028-02-29', '2028-02-15')) v(ps, pe, released_on);

-- ---- past due ---------------------------------------------------------
INSERT INTO twilio_numbers.accounts (name, credit_limit) VALUES ('Late Payer', 2.00) RETURNING account_id AS late \gset
SELECT twilio_numbers.numbers_deposit(:late, 4.00);
SELECT count(*) FROM twilio_numbers.numbers_purchase(:late, ARRAY['+13055550110', '+13055550111']);
SELECT emu.backdate('+13055550110', '2027-05-10');
SELECT emu.backdate('+13055550111', '2027-05-12');
SELECT balance, credit_limit FROM twilio_numbers.accounts WHERE account_id = :late;   -- 1.70 + 2.00 available
-- June: both due (2 x 1.15 = 2.30 <= 3.70)
SELECT numbers_charged, amount, past_due FROM twilio_numbers.numbers_run_billing(emu.t('2027-06-15 00:00:00+00'));
-- July: -0.60 + 2.00 covers one of the two (the older period first); the other turns
-- past due, and nothing is charged beyond the limit
SELECT numbers_charged, amount, past_due FROM twilio_numbers.numbers_run_billing(emu.t('2027-07-15 00:00:00+00'));
SELECT phone_number, status, emu.shown((next_billing_at AT TIME ZONE 'UTC')::date) AS next_billing,
       emu.shown((past_due_since AT TIME ZONE 'UTC')::date) AS past_due_since
FROM twilio_numbers.owned_numbers WHERE account_id = :late ORDER BY phone_number;
SELECT balance, balance >= -credit_limit AS within_limit FROM twilio_numbers.accounts WHERE account_id = :late;
-- a past-due number is refunded nothing on release
-- (checked below for the grace release); a deposit and the next pass reactivate it
SELECT twilio_numbers.numbers_deposit(:late, 10.00);
SELECT numbers_charged, amount, reactivated FROM twilio_numbers.numbers_run_billing(emu.t('2027-07-16 00:00:00+00'));
SELECT phone_number, status, emu.shown((next_billing_at AT TIME ZONE 'UTC')::date) AS next_billing, past_due_since
FROM twilio_numbers.owned_numbers WHERE account_id = :late ORDER BY phone_number;

-- ---- grace period -------------------------------------------------------
INSERT INTO twilio_numbers.accounts (name) VALUES ('Gone Away') RETURNING account_id AS gone \gset
SELECT twilio_numbers.numbers_deposit(:gone, 1.15);
SELECT phone_number FROM twilio_numbers.numbers_purchase(:gone, '+13055550120');
SELECT emu.backdate('+13055550120', '2027-03-01');
SELECT past_due FROM twilio_numbers.numbers_run_billing(emu.t('2027-04-01 00:00:00+00'));
-- six days later: still kept (grace_period is 7 days)
SELECT released FROM twilio_numbers.numbers_run_billing(emu.t('2027-04-07 23:59:59+00'));
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+13055550120' AND status <> 'released';
-- seven days as of the pass — but the pass is dated in the future: the grace
-- period has not passed in real time, so nothing is released at Twilio
-- (the emulator's log shows no DELETE)
SELECT emu.clear_requests();
SELECT released FROM twilio_numbers.numbers_run_billing(emu.t('2027-04-08 00:00:00+00'));
SELECT emu.queue_drained();
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+13055550120' AND status <> 'released';
SELECT count(*) AS deletes FROM emu.requests() r WHERE r->>'method' = 'DELETE';
SELECT '+13055550120' IN (SELECT emu.owned()) AS still_at_twilio;
-- the debt found seven days ago in real time: released through the queue, no refund
UPDATE twilio_numbers.owned_numbers SET past_due_since = now() - interval '7 days'
WHERE phone_number = '+13055550120' AND status = 'past_due';
SELECT balance AS before FROM twilio_numbers.accounts WHERE account_id = :gone \gset
SELECT released FROM twilio_numbers.numbers_run_billing(emu.t('2027-04-08 00:00:00+00'));
SELECT emu.queue_drained();
SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+13055550120';
SELECT balance = :before AS no_refund FROM twilio_numbers.accounts WHERE account_id = :gone;
SELECT '+13055550120' IN (SELECT emu.owned()) AS still_at_twilio;
SELECT kind, status, payload->>'reason' AS reason FROM twilio_numbers.work_queue WHERE phone_number = '+13055550120';

-- the runs, as the monitoring view shows them
SELECT started_by, status, progress, numbers_charged, periods_charged, amount, past_due, reactivated, released
FROM twilio_numbers.billing_report WHERE started_by = 'manual' ORDER BY run_id;

-- money conserved
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;
