--
-- Hosted number orders: filed in the caller's transaction,
-- followed by the worker through Twilio's life cycle, completed into an
-- owned number (origin hosted), canceled while Twilio allows it.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Hosting Co') RETURNING account_id AS host \gset
SELECT twilio_numbers.numbers_deposit(:host, 50);
INSERT INTO twilio_numbers.price_list VALUES ('US', 'hosted', 5.00, 0.75, 'USD');
SELECT emu.clear_requests();

-- move an order as Twilio's staff and carriers would, and wait until the worker saw it
CREATE FUNCTION emu.hosted_move(p_sid text, p_status text) RETURNS text LANGUAGE sql AS $$
  SELECT emu.call('POST', '/_emulator/hosted/' || p_sid, jsonb_build_object('status', p_status));
  SELECT CASE WHEN emu.wait_until(format(
           'SELECT status = %L FROM twilio_numbers.hosted_orders WHERE order_sid = %L', p_status, p_sid))
         THEN p_status ELSE 'worker did not see ' || p_status END;
$$;

-- bad input: 22023 / P0002 before any request
SELECT emu.try(stmt) FROM unnest(ARRAY[
  format($$SELECT twilio_numbers.numbers_hosted_order(%s, '+442071234567', 'it@example.com', '+14085550000', 'AD00000000000000000000000000000001')$$, :host),
  format($$SELECT twilio_numbers.numbers_hosted_order(%s, '+14085551234', 'not-an-email', '+14085550000', 'AD00000000000000000000000000000001')$$, :host),
  format($$SELECT twilio_numbers.numbers_hosted_order(%s, '+14085551234', 'it@example.com', NULL, 'AD00000000000000000000000000000001')$$, :host),
  format($$SELECT twilio_numbers.numbers_hosted_order(%s, '+14085551234', 'it@example.com', '+14085550000', 'PN00000000000000000000000000000001')$$, :host),
  format($$SELECT twilio_numbers.numbers_hosted_order(%s, '+14085551234', 'it@example.com', '+14085550000', 'AD00000000000000000000000000000001', sms_url => 'nope')$$, :host),
  $$SELECT twilio_numbers.numbers_hosted_order(999999, '+14085551234', 'it@example.com', '+14085550000', 'AD00000000000000000000000000000001')$$,
  format($$SELECT twilio_numbers.numbers_hosted_cancel(%s, 'HR00000000000000000000000000000009')$$, :host),
  format($$SELECT twilio_numbers.numbers_hosted_cancel(%s, 'PN00000000000000000000000000000009')$$, :host)
]) AS stmt;
SELECT count(*) AS requests FROM emu.log;

-- an order: one POST to numbers v2 with the v2 fields
SELECT order_sid ~ '^HR' AS has_sid, phone_number, status, contact_email, contact_phone_number, address_sid,
       friendly_name, sms_url, number_id
FROM twilio_numbers.numbers_hosted_order(:host, '+14085551234', 'it@example.com', '+14085550000',
       'AD00000000000000000000000000000001', friendly_name => 'Main line', sms_url => 'https://app.example.com/sms');
SELECT method, path, form FROM emu.log WHERE method = 'POST';
SELECT order_sid AS o1 FROM twilio_numbers.hosted_orders WHERE phone_number = '+14085551234' \gset
-- the same number cannot be ordered twice
SELECT emu.try(format($$SELECT twilio_numbers.numbers_hosted_order(%s, '+14085551234', 'it@example.com', '+14085550000', 'AD00000000000000000000000000000001')$$, :host));

-- through the whole life cycle; the worker follows every step
SELECT emu.hosted_move(:'o1', 'pending-verification');
SELECT emu.hosted_move(:'o1', 'verified');
SELECT emu.hosted_move(:'o1', 'pending-loa');
SELECT emu.hosted_move(:'o1', 'carrier-processing');
SELECT emu.hosted_move(:'o1', 'testing');
-- Twilio can no longer cancel now, and says so
SELECT * FROM emu.try_full(format('SELECT twilio_numbers.numbers_hosted_cancel(%s, %L)', :host, :'o1'));
SELECT emu.hosted_move(:'o1', 'completed');
SELECT emu.wait_until(format('SELECT number_id IS NOT NULL FROM twilio_numbers.hosted_orders WHERE order_sid = %L', :'o1'));
SELECT status FROM twilio_numbers.hosted_order_history WHERE order_sid = :'o1' ORDER BY seen_at;

-- completed: an owned number, origin hosted, billed like the others
SELECT phone_number, status, origin, number_type, iso_country, twilio_sid ~ '^PN' AS has_sid,
       friendly_name, sms_url, setup_price, monthly_price,
       next_billing_at = (((now() AT TIME ZONE 'UTC')::date + interval '1 month')::timestamp AT TIME ZONE 'UTC') AS next_month
FROM twilio_numbers.owned_numbers WHERE phone_number = '+14085551234';
SELECT kind, amount, memo FROM twilio_numbers.ledger
WHERE account_id = :host AND kind <> 'deposit' ORDER BY entry_id;
SELECT balance FROM twilio_numbers.accounts WHERE account_id = :host;
SELECT emu.try(format('SELECT twilio_numbers.numbers_hosted_cancel(%s, %L)', :host, :'o1'));
SELECT kind, status FROM twilio_numbers.work_queue WHERE kind = 'hosted_poll' AND payload->>'order_sid' = :'o1';
-- and it is released like any other number
SELECT twilio_numbers.numbers_release(:host, '+14085551234') > 0 AS refunded;
SELECT emu.queue_drained();
SELECT '+14085551234' IN (SELECT emu.owned()) AS still_at_twilio;

-- cancel while Twilio allows it: received, pending-verification, verified, pending-loa
SELECT s.status,
       (SELECT status FROM twilio_numbers.numbers_hosted_cancel(:host, o.order_sid)) AS after_cancel,
       (SELECT count(*) FROM jsonb_array_elements(emu.state()->'hosted_orders') h
        WHERE h->>'sid' = o.order_sid) AS still_at_twilio
FROM unnest(ARRAY['received', 'pending-verification', 'verified', 'pending-loa']) WITH ORDINALITY s(status, i),
     LATERAL twilio_numbers.numbers_hosted_order(:host, '+1408555200' || s.i, 'it@example.com', '+14085550000',
                                                 'AD00000000000000000000000000000001') o,
     LATERAL (SELECT CASE WHEN s.status = 'received' THEN 'received'
                          ELSE emu.call('POST', '/_emulator/hosted/' || o.order_sid,
                                        jsonb_build_object('status', s.status))->>'status' END) m
ORDER BY s.i;
SELECT count(*) AS canceled_orders FROM twilio_numbers.hosted_orders WHERE status = 'canceled';

-- failed and action-required: visible, with Twilio's reason
SELECT order_sid AS o2 FROM twilio_numbers.numbers_hosted_order(:host, '+14085553001', 'it@example.com',
       '+14085550000', 'AD00000000000000000000000000000001') \gset
SELECT order_sid AS o3 FROM twilio_numbers.numbers_hosted_order(:host, '+14085553002', 'it@example.com',
       '+14085550000', 'AD00000000000000000000000000000001') \gset
SELECT emu.hosted_move(:'o2', 'failed');
SELECT emu.hosted_move(:'o3', 'action-required');
SELECT phone_number, status, failure_reason FROM twilio_numbers.hosted_orders
WHERE order_sid IN (:'o2', :'o3') ORDER BY phone_number;
SELECT emu.try(format('SELECT twilio_numbers.numbers_hosted_cancel(%s, %L)', :host, :'o2'));
-- a failed order is final: no more polling; action-required keeps being watched
SELECT payload->>'order_sid' = :'o2' AS failed_order, status FROM twilio_numbers.work_queue
WHERE kind = 'hosted_poll' AND payload->>'order_sid' IN (:'o2', :'o3') ORDER BY 1;
-- and a failed number can be ordered again
SELECT status FROM twilio_numbers.numbers_hosted_order(:host, '+14085553001', 'it@example.com',
       '+14085550000', 'AD00000000000000000000000000000001');

-- an order filed in a transaction that rolls back is canceled at Twilio
BEGIN;
SELECT status FROM twilio_numbers.numbers_hosted_order(:host, '+14085554001', 'it@example.com',
       '+14085550000', 'AD00000000000000000000000000000001');
ROLLBACK;
SELECT emu.wait_until($$SELECT EXISTS (SELECT 1 FROM twilio_numbers.work_queue
                                      WHERE kind = 'hosted_cancel' AND phone_number = '+14085554001'
                                        AND status = 'done')$$);
SELECT count(*) AS rolled_back_orders_at_twilio FROM jsonb_array_elements(emu.state()->'hosted_orders') h
WHERE h->>'phone_number' = '+14085554001';
SELECT kind, status FROM twilio_numbers.work_queue WHERE kind = 'hosted_cancel' AND phone_number = '+14085554001';

-- tidy up: end the orders still alive, so that nothing polls Twilio after this file
SELECT emu.hosted_move(:'o3', 'failed');
SELECT status FROM twilio_numbers.numbers_hosted_cancel(:host,
  (SELECT order_sid FROM twilio_numbers.hosted_orders WHERE phone_number = '+14085553001' AND status = 'received'));
SELECT emu.wait_until($$SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue
                                          WHERE kind = 'hosted_poll' AND status = 'pending')$$);
