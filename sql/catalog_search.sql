--
-- numbers_search: columns, filters, one request per call, prices, zero rows
--
SELECT emu.clear_faults(), emu.clear_requests();

-- the result columns and their types
SELECT attnum, attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = 'twilio_numbers.available_number'::regclass AND attnum > 0
ORDER BY attnum;

-- the parameters, with their defaults
SELECT pg_get_function_arguments('twilio_numbers.numbers_search'::regproc);

-- a plain search: 20 rows by default, all local US numbers, priced
SELECT count(*) AS n, bool_and(number_type = 'local') AS local, bool_and(iso_country = 'US') AS us,
       bool_and(phone_number ~ '^\+1[2-9][0-9]{9}$') AS e164,
       min(monthly_price) AS monthly, min(setup_price) AS setup, min(currency) AS currency
FROM twilio_numbers.numbers_search(country => 'US');

-- 120 results come from exactly one request, sent with PageSize=120
SELECT emu.clear_requests();
SELECT count(*) AS n, count(DISTINCT phone_number) AS distinct_numbers
FROM twilio_numbers.numbers_search(country => 'US', area_code => '415', max_results => 120);
SELECT method, path, query FROM emu.log;

-- 1000, Twilio's maximum, in one request too
SELECT emu.clear_requests();
SELECT count(*) > 120 AS many FROM twilio_numbers.numbers_search('US', max_results => 1000);
SELECT count(*) AS requests, min(query->>'PageSize') AS page_size FROM emu.log;

-- each filter reaches Twilio under its own name and narrows the rows
SELECT emu.clear_requests();
SELECT count(*) > 0 AS found, bool_and(phone_number LIKE '+1212%') AS area
FROM twilio_numbers.numbers_search('US', area_code => '212', max_results => 50);
SELECT count(*) > 0 AS found, bool_and(sms) AS sms, bool_and(mms) AS mms
FROM twilio_numbers.numbers_search('US', area_code => '415', sms => true, mms => true, max_results => 50);
SELECT count(*) > 0 AS found, bool_and(NOT mms) AS no_mms
FROM twilio_numbers.numbers_search('US', area_code => '415', mms => false, max_results => 50);
SELECT count(*) > 0 AS found, bool_and(voice) AS voice, bool_and(fax) AS fax
FROM twilio_numbers.numbers_search('US', voice => true, fax => true, max_results => 50);
SELECT count(*) > 0 AS found, bool_and(region = 'TX') AS texas
FROM twilio_numbers.numbers_search('US', in_region => 'TX', max_results => 50);
SELECT count(*) > 0 AS found, bool_and(locality = 'Chicago') AS chicago
FROM twilio_numbers.numbers_search('US', in_locality => 'Chicago', max_results => 50);
SELECT count(*) > 0 AS found, bool_and(postal_code = '94103') AS zip
FROM twilio_numbers.numbers_search('US', in_postal_code => '94103', max_results => 50);
SELECT count(*) > 0 AS found, bool_and(lata = '722') AS lata
FROM twilio_numbers.numbers_search('US', in_lata => '722', max_results => 50);
SELECT count(*) > 0 AS found, bool_and(beta = false) AS not_beta
FROM twilio_numbers.numbers_search('US', beta => false, max_results => 200);
SELECT count(*) > 0 AS found, bool_and(phone_number LIKE '%0%') AS has_zero
FROM twilio_numbers.numbers_search('US', contains => '00', max_results => 50);
SELECT count(*) > 0 AS found, bool_and(phone_number LIKE '+1415%') AS prefix
FROM twilio_numbers.numbers_search('US', contains => '+1415', max_results => 50);
-- near a point: every number within 50 miles of downtown San Francisco
SELECT count(*) > 0 AS found,
       bool_and(abs(latitude - 37.7749) < 1 AND abs(longitude + 122.4194) < 1.2) AS near
FROM twilio_numbers.numbers_search('US', near_lat_long => '37.7749,-122.4194', distance => 50, max_results => 50);
SELECT count(*) > 0 AS found
FROM twilio_numbers.numbers_search('US', near_number => '+14155550100', distance => 25, max_results => 50);
SELECT path, query FROM emu.log ORDER BY seq;

-- address requirements: GB local numbers need an address; excluding them leaves none
SELECT count(*) > 0 AS found, bool_and(address_requirements <> 'none') AS need_address
FROM twilio_numbers.numbers_search('GB', max_results => 20);
SELECT count(*) AS n
FROM twilio_numbers.numbers_search('GB', exclude_all_address_required => true, max_results => 20);

-- other types and countries
SELECT count(*) > 0 AS found, bool_and(number_type = 'toll_free') AS toll_free,
       bool_and(phone_number ~ '^\+18(00|33|44|55|66|77|88)') AS toll_free_prefix
FROM twilio_numbers.numbers_search('US', number_type => 'toll_free');
SELECT count(*) > 0 AS found, bool_and(iso_country = 'GB') AS gb, min(currency) AS currency
FROM twilio_numbers.numbers_search('gb', number_type => 'mobile');

-- a type the country does not offer: zero rows, not an error (Twilio says 404)
SELECT emu.clear_requests();
SELECT coalesce(max(seq), 0) AS log_mark FROM twilio_numbers.call_log \gset
SELECT count(*) AS n FROM twilio_numbers.numbers_search('GB', number_type => 'toll_free');
SELECT method, path, status, twilio_code FROM emu.log WHERE path LIKE '%AvailablePhoneNumbers%';

-- numbers_countries: where Twilio offers numbers, with their types
SELECT * FROM twilio_numbers.numbers_countries() ORDER BY iso_country;

-- every catalog request since the mark is in the call log, as this session's
-- (the worker's requests are of other paths); no entry holds credentials
SELECT (SELECT count(*) FROM twilio_numbers.call_log WHERE seq > :log_mark AND pid = pg_backend_pid())
     = (SELECT count(*) FROM emu.requests() r
        WHERE r->>'path' LIKE '%/AvailablePhoneNumbers%' OR r->>'path' LIKE '/v1/PhoneNumbers/Countries%')
       AS every_request_logged,
       (SELECT count(*) FROM twilio_numbers.call_log WHERE seq > :log_mark) >= 2 AS some_requests,
       (SELECT bool_and(path NOT LIKE '%' || current_setting('twilio_numbers.auth_token') || '%')
        FROM twilio_numbers.call_log) AS no_token;
SELECT method, status, twilio_code, path FROM twilio_numbers.call_log
WHERE path LIKE '%GB/TollFree%' ORDER BY seq DESC LIMIT 1;
