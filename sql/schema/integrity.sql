--------------------------------------------------------------------------
-- Integrity: every broken invariant of the money and the owned numbers,
-- one row each; empty when all is well
--------------------------------------------------------------------------

-- What tests, the soak and operators check after anything happened: an
-- account whose balance is not the sum of its ledger, a balance beyond its
-- credit limit, a (number, period) charged twice, an active number without a
-- paid period (a past-due one may have none: it is created unpaid when a
-- hosted order completes for an account that cannot pay).  Set-based, read-only; cheap enough to run after every test and
-- from monitoring (it reads every account and every ledger entry once).
CREATE VIEW integrity AS
SELECT 'balance_not_ledger_sum'::text AS violation, a.account_id, NULL::bigint AS number_id,
       format('balance %s, ledger sum %s', a.balance, coalesce(l.total, 0)) AS detail
FROM accounts a
LEFT JOIN (SELECT e.account_id, sum(e.amount) AS total FROM ledger e GROUP BY e.account_id) l
       USING (account_id)
WHERE a.balance IS DISTINCT FROM coalesce(l.total, 0)
UNION ALL
SELECT 'balance_below_credit_limit', a.account_id, NULL,
       format('balance %s, credit limit %s', a.balance, a.credit_limit)
FROM accounts a
WHERE a.balance < -a.credit_limit
UNION ALL
SELECT 'period_charged_twice', min(e.account_id), e.number_id,
       format('period from %s charged %s times', e.period_start, count(*))
FROM ledger e
WHERE e.kind = 'monthly_fee' AND e.number_id IS NOT NULL
GROUP BY e.number_id, e.period_start
HAVING count(*) > 1
UNION ALL
SELECT 'active_number_without_period', o.account_id, o.number_id,
       format('%s: period from %s, next billing at %s', o.phone_number, o.period_start, o.next_billing_at)
FROM owned_numbers o
WHERE o.status = 'active'
  AND (o.next_billing_at IS NULL OR o.next_billing_at <= o.period_start::timestamp AT TIME ZONE 'UTC');
COMMENT ON VIEW integrity IS
  'Every broken invariant (balance = sum of the ledger, balance within its credit limit, one charge per number and period, a paid period for every active number), one row each: empty when all is well.';
