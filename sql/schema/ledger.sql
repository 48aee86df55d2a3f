--------------------------------------------------------------------------
-- The ledger: every change of a balance is one entry, applied by a
-- statement trigger that also enforces the credit limit
--------------------------------------------------------------------------

-- The ledger: every balance change is one entry; append-only.
CREATE TABLE ledger (
    entry_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts,
    amount       numeric(14,2) NOT NULL CHECK (amount <> 0),
    kind         text NOT NULL
                 CHECK (kind IN ('deposit', 'setup_fee', 'monthly_fee', 'refund', 'adjustment')),
    number_id    bigint REFERENCES owned_numbers,
    period_start date,
    period_end   date,
    memo         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (CASE kind WHEN 'deposit' THEN amount > 0
                     WHEN 'refund' THEN amount > 0
                     WHEN 'setup_fee' THEN amount < 0
                     WHEN 'monthly_fee' THEN amount < 0
                     ELSE true END),
    CHECK (kind NOT IN ('setup_fee', 'monthly_fee', 'refund') OR number_id IS NOT NULL),
    CHECK (kind <> 'monthly_fee' OR (period_start IS NOT NULL AND period_end > period_start))
);
COMMENT ON TABLE ledger IS
  'Append-only money movements: credit > 0, debit < 0; each account''s balance is the sum of its entries.';
-- exactly one monthly charge per number and period
CREATE UNIQUE INDEX ledger_one_charge_per_period ON ledger (number_id, period_start)
    WHERE kind = 'monthly_fee';
CREATE INDEX ledger_account ON ledger (account_id, entry_id);
CREATE INDEX ledger_number ON ledger (number_id) WHERE number_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('ledger', '');
SELECT pg_catalog.pg_extension_config_dump('ledger_entry_id_seq', '');

-- Apply each statement's new entries to the balances: accounts locked in
-- account order (no deadlock between statements), one UPDATE, then the
-- credit limit checked for every account the statement debited.
CREATE FUNCTION _ledger_apply() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v record;
BEGIN
    PERFORM 1 FROM twilio_numbers.accounts a
    WHERE a.account_id IN (SELECT DISTINCT e.account_id FROM new_entries e)
    ORDER BY a.account_id
    FOR NO KEY UPDATE;

    UPDATE twilio_numbers.accounts a
    SET balance = a.balance + s.delta
    FROM (SELECT e.account_id, sum(e.amount) AS delta FROM new_entries e GROUP BY e.account_id) s
    WHERE a.account_id = s.account_id;

    SELECT a.account_id, a.balance, a.credit_limit, a.currency INTO v
    FROM twilio_numbers.accounts a
    WHERE a.account_id IN (SELECT e.account_id FROM new_entries e WHERE e.amount < 0)
      AND a.balance < -a.credit_limit
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insufficient funds in account %', v.account_id
            USING ERRCODE = 'TN001',
                  DETAIL = format('The balance would be %s %s, below the credit limit of %s.',
                                  v.balance, v.currency, -v.credit_limit),
                  HINT = 'Deposit with numbers_deposit(), or raise the account''s credit_limit.';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_apply AFTER INSERT ON ledger
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION _ledger_apply();

-- The ledger is append-only: a mistake is corrected with a new entry.
CREATE FUNCTION _ledger_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = '23000',
              HINT = 'Correct a mistake with a new entry (an adjustment or a refund).';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION _ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION _ledger_append_only();

-- Credit an account (SQL: no Twilio call in the caller's transaction).
CREATE FUNCTION numbers_deposit(account_id bigint, amount numeric, memo text DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a record;
BEGIN
    PERFORM twilio_numbers._check_money('amount', numbers_deposit.amount, true);
    SELECT x.status, x.currency INTO a FROM twilio_numbers.accounts x
    WHERE x.account_id = numbers_deposit.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', numbers_deposit.account_id USING ERRCODE = 'P0002';
    END IF;
    IF a.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', numbers_deposit.account_id USING ERRCODE = '55000';
    END IF;
    BEGIN
        INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo)
        VALUES (numbers_deposit.account_id, numbers_deposit.amount, 'deposit', numbers_deposit.memo);
    EXCEPTION WHEN numeric_value_out_of_range THEN
        -- the balance would not fit numeric(14,2): the amount is the caller's error
        RAISE EXCEPTION 'a deposit of % would take the balance of account % beyond 999999999999.99',
                        numbers_deposit.amount, numbers_deposit.account_id
            USING ERRCODE = '22023',
                  DETAIL = 'An account''s balance is numeric(14,2).',
                  HINT = 'Check the amount; nothing was credited.';
    END;
    RETURN (SELECT x.balance FROM twilio_numbers.accounts x WHERE x.account_id = numbers_deposit.account_id);
END $$;
COMMENT ON FUNCTION numbers_deposit IS 'Credit an account; returns the new balance.';
