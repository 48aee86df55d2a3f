--------------------------------------------------------------------------
-- Roles: what an application role and a reporting role may do; nothing
-- for PUBLIC (README "Roles and grants")
--------------------------------------------------------------------------

-- An application role calls the functions, creates and edits accounts and
-- reads the tables; it writes no money or number table directly.
CREATE FUNCTION grant_application(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'twilio_numbers.numbers_search, twilio_numbers.numbers_pricing, twilio_numbers.numbers_countries, '
        'twilio_numbers.numbers_deposit, '
        'twilio_numbers.numbers_purchase(bigint, text, text, text, text, text, text, text, text, text, text, text, text), '
        'twilio_numbers.numbers_purchase(bigint, text[], text, text, text, text, text, text, text, text, text, text, text), '
        'twilio_numbers.numbers_update, twilio_numbers.numbers_release, '
        'twilio_numbers.numbers_trunk_assign, twilio_numbers.numbers_trunk_unassign, '
        'twilio_numbers.numbers_trunk_numbers, twilio_numbers.numbers_transfer, '
        'twilio_numbers.numbers_messaging_assign, twilio_numbers.numbers_messaging_unassign, '
        'twilio_numbers.numbers_messaging_numbers, '
        'twilio_numbers.numbers_hosted_order, twilio_numbers.numbers_hosted_cancel, '
        'twilio_numbers.numbers_owned, twilio_numbers.numbers_cost_estimate, twilio_numbers.numbers_statement, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund TO %s', role);
    -- customers' addresses, what a country requires, their bundles
    EXECUTE format('GRANT EXECUTE ON FUNCTION '
        'twilio_numbers.numbers_address_create, twilio_numbers.numbers_address_update, '
        'twilio_numbers.numbers_address_delete, twilio_numbers.numbers_addresses, '
        'twilio_numbers.numbers_addresses_refresh, '
        'twilio_numbers.numbers_requirements, twilio_numbers.numbers_bundle_register TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.addresses, twilio_numbers.bundles, '
        'twilio_numbers.bundle_history TO %s', role);
    EXECUTE format('GRANT SELECT ON twilio_numbers.accounts, twilio_numbers.owned_numbers, '
        'twilio_numbers.live_numbers, twilio_numbers.ledger, twilio_numbers.price_list, twilio_numbers.account_numbers, '
        'twilio_numbers.account_monthly_cost, twilio_numbers.hosted_orders, '
        'twilio_numbers.hosted_order_history TO %s', role);
    -- which Twilio account a customer's numbers live in is the DBA's
    -- decision (numbers_map_account), never the application's
    EXECUTE format('GRANT INSERT (name, currency, credit_limit, status), '
        'UPDATE (name, credit_limit, status) ON twilio_numbers.accounts TO %s', role);
END $$;
COMMENT ON FUNCTION grant_application IS
  'GRANT an application role what it needs: the functions, reading the tables, creating accounts.';

-- A reporting role reads every table and view, and runs the read-only functions.
CREATE FUNCTION grant_reporting(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA twilio_numbers TO %s', role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA twilio_numbers TO %s', role);
    -- the views over shared memory call these read-only functions
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.call_log_entries, '
        'twilio_numbers.inflight_entries, twilio_numbers.worker_info, twilio_numbers.request_budget_info, '
        'twilio_numbers.period_end, twilio_numbers._period_start, twilio_numbers.prorated_refund, '
        'twilio_numbers._capabilities, twilio_numbers.twilio_clock_info TO %s', role);
    -- and every function that only reads the database: reports, estimates,
    -- statements, versions, the incarnation (not the catalog and prices,
    -- which ask Twilio with the account's credentials)
    EXECUTE format('GRANT EXECUTE ON FUNCTION twilio_numbers.numbers_owned, '
        'twilio_numbers.numbers_cost_estimate, twilio_numbers.numbers_statement, '
        'twilio_numbers.numbers_trunk_numbers, twilio_numbers.numbers_version, twilio_numbers._library_version, '
        'twilio_numbers.numbers_incarnation TO %s', role);
END $$;
COMMENT ON FUNCTION grant_reporting IS
  'GRANT a reporting role read access to every table and view, and the read-only functions.';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA twilio_numbers FROM PUBLIC;
