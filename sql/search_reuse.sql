--
-- numbers_purchase takes what this session's numbers_search just saw of a
-- number (its type, address requirement and place: seen_numbers.c) instead
-- of looking it up in Twilio's inventory again; twilio_numbers.search_reuse_s
-- = 0 looks every number up.  A purchase takes its numbers' entries out,
-- whatever happens: a second purchase of the same number looks it up.
--
INSERT INTO twilio_numbers.accounts (name) VALUES ('Reuse Co') RETURNING account_id AS reuse \gset
SELECT twilio_numbers.numbers_deposit(:reuse, 100);
INSERT INTO twilio_numbers.price_list VALUES ('US', 'local', 0.50, 2.00, 'USD') ON CONFLICT DO NOTHING;
SHOW twilio_numbers.search_reuse_s;
-- an hour here, so that a slow machine cannot make a search too old to use
SET twilio_numbers.search_reuse_s = '1h';
SELECT emu.queue_drained();

-- the look-ups and the purchase POSTs the emulator saw, numbers as found.i
CREATE TEMP TABLE found (i int, phone_number text, locality text, region text);
CREATE VIEW pg_temp.sent AS
SELECT l.seq, l.method,
       CASE WHEN l.path LIKE '/AvailablePhoneNumbers/%' THEN 'look-up' ELSE 'buy' END AS what,
       f.i AS number, l.status, l.twilio_code
FROM emu.log l
LEFT JOIN found f ON f.phone_number = coalesce(l.query->>'Contains', l.form->>'PhoneNumber')
WHERE (l.method = 'GET' AND l.path LIKE '/AvailablePhoneNumbers/%')
   OR (l.method = 'POST' AND l.path LIKE '/IncomingPhoneNumbers%');

-- (a) a search, then a purchase of two of its numbers: no look-up, only the POSTs
INSERT INTO found
SELECT row_number() OVER (ORDER BY phone_number), phone_number, locality, region
FROM twilio_numbers.numbers_search('US', area_code => '503', max_results => 20)
WHERE coalesce(address_requirements, 'none') = 'none';
SELECT count(*) >= 7 AS enough_found FROM found;
SELECT emu.clear_requests();
SELECT f.i, p.status, p.number_type, p.iso_country,
       p.locality IS NOT DISTINCT FROM f.locality AS searched_locality,
       p.region IS NOT DISTINCT FROM f.region AS searched_region
FROM twilio_numbers.numbers_purchase(:reuse, ARRAY(SELECT phone_number FROM found WHERE i IN (1, 2) ORDER BY i)) p
JOIN found f USING (phone_number) ORDER BY f.i;
SELECT method, what, number, status FROM pg_temp.sent ORDER BY number, seq;

-- (b) with search_reuse_s = 0 the same flow looks each number up first
SET twilio_numbers.search_reuse_s = 0;
SELECT count(*) > 0 AS searched FROM twilio_numbers.numbers_search('US', area_code => '503', max_results => 20);
SELECT emu.clear_requests();
SELECT count(*) AS bought
FROM twilio_numbers.numbers_purchase(:reuse, ARRAY(SELECT phone_number FROM found WHERE i IN (3, 4) ORDER BY i));
-- every look-up before the first POST
SELECT method, what, number, status FROM pg_temp.sent ORDER BY number, seq;
SELECT max(seq) FILTER (WHERE what = 'look-up') < min(seq) FILTER (WHERE what = 'buy') AS lookups_first
FROM pg_temp.sent;
SET twilio_numbers.search_reuse_s = '1h';

-- (c) a number the search saw, sold meanwhile (bought straight at Twilio):
-- the POST is refused (21422 -> TN002), the other number of the purchase is
-- released by the worker, nothing is charged
SELECT count(*) > 0 AS searched FROM twilio_numbers.numbers_search('US', area_code => '503', max_results => 20);
SELECT emu.twilio('POST', emu.account() || '/IncomingPhoneNumbers.json',
                  jsonb_build_object('PhoneNumber', phone_number))->>'sid' AS sold_sid
FROM found WHERE i = 6 \gset
SELECT balance AS balance_before, (SELECT count(*) FROM twilio_numbers.ledger WHERE account_id = :reuse) AS entries_before
FROM twilio_numbers.accounts WHERE account_id = :reuse \gset
SELECT emu.clear_requests();
SELECT state, message, replace(detail, (SELECT phone_number FROM found WHERE i = 6), '<6>') AS detail
FROM emu.try_full(format('SELECT * FROM twilio_numbers.numbers_purchase(%s, ARRAY[%L, %L])', :reuse,
                         (SELECT phone_number FROM found WHERE i = 5), (SELECT phone_number FROM found WHERE i = 6)));
SELECT emu.queue_drained();
SELECT method, what, number, status, twilio_code FROM pg_temp.sent ORDER BY number, seq;
SELECT kind, status FROM twilio_numbers.work_queue WHERE phone_number = (SELECT phone_number FROM found WHERE i = 5);
SELECT count(*) AS released_at_twilio FROM emu.log
WHERE method = 'DELETE' AND path LIKE '/IncomingPhoneNumbers/PN%' AND status < 300;
SELECT (SELECT phone_number FROM found WHERE i = 5) IN (SELECT emu.owned()) AS still_at_twilio;
SELECT balance = :balance_before AS nothing_charged,
       (SELECT count(*) FROM twilio_numbers.ledger WHERE account_id = :reuse) = :entries_before AS no_ledger_entry
FROM twilio_numbers.accounts WHERE account_id = :reuse;
SELECT count(*) AS rows_written FROM twilio_numbers.owned_numbers o JOIN found f USING (phone_number) WHERE f.i IN (5, 6);
-- the number sold meanwhile leaves Twilio again (it is nobody's here)
SELECT emu.twilio('DELETE', emu.account() || '/IncomingPhoneNumbers/' || :'sold_sid' || '.json') IS NULL AS gone;

-- the failed purchase took its entries out: buying number 5 again looks it up
SELECT emu.clear_requests();
SELECT f.i, p.status FROM twilio_numbers.numbers_purchase(:reuse, (SELECT phone_number FROM found WHERE i = 5)) p
JOIN found f USING (phone_number);
SELECT method, what, number, status FROM pg_temp.sent ORDER BY number, seq;

-- (d) a number that needs an address, seen by a search: still refused with
-- TN003 before any request (the search's address_requirements)
SELECT phone_number AS gb_number, address_requirements AS gb_requirement
FROM twilio_numbers.numbers_search('GB', number_type => 'local', max_results => 5)
WHERE address_requirements <> 'none' ORDER BY phone_number LIMIT 1 \gset
SELECT emu.clear_requests();
SELECT state, replace(message, :'gb_number', 'N') AS message, detail = format(
           'Twilio lists its address_requirements as "%s". Nothing was sent to Twilio.', :'gb_requirement') AS detail_as_searched
FROM emu.try_full(format('SELECT twilio_numbers.numbers_purchase(%s, %L)', :reuse, :'gb_number'));
SELECT count(*) FILTER (WHERE what = 'look-up') AS lookups, count(*) FILTER (WHERE what = 'buy') AS posts FROM pg_temp.sent;

-- (e) a search older than search_reuse_s is not used: the number is looked up
SET twilio_numbers.search_reuse_s = 1;
SELECT count(*) > 0 AS searched FROM twilio_numbers.numbers_search('US', area_code => '503', max_results => 20);
SELECT pg_sleep(1.1);
SELECT emu.clear_requests();
SELECT f.i, p.status FROM twilio_numbers.numbers_purchase(:reuse, (SELECT phone_number FROM found WHERE i = 7)) p
JOIN found f USING (phone_number);
SELECT method, what, number, status FROM pg_temp.sent ORDER BY number, seq;
RESET twilio_numbers.search_reuse_s;

-- money conserved
SELECT violation, account_id, number_id, detail FROM twilio_numbers.integrity;
