--
-- numbers_pricing, the pricing cache, price_list overrides and the markup
--
SELECT emu.clear_faults(), emu.clear_requests();
TRUNCATE twilio_numbers.pricing_cache;
SELECT emu.clear_requests();

-- Twilio's prices (decimal strings on the wire) as numeric, ours beside them
SELECT * FROM twilio_numbers.numbers_pricing('US');
SELECT * FROM twilio_numbers.numbers_pricing('gb');
SELECT count(*) AS pricing_requests FROM emu.log WHERE path LIKE '/v1/PhoneNumbers/Countries/%';

-- the cache: a second call, and searches, do not ask Twilio again
SELECT emu.clear_requests();
SELECT count(*) FROM twilio_numbers.numbers_pricing('US');
SELECT count(*) > 0 FROM twilio_numbers.numbers_search('US', max_results => 5);
SELECT count(*) > 0 FROM twilio_numbers.numbers_search('US', max_results => 5);
SELECT path FROM emu.log ORDER BY seq;
SELECT iso_country, number_type, current_price, currency FROM twilio_numbers.pricing_cache ORDER BY 1, 2;

-- a TTL of 0 makes every use refetch
SET twilio_numbers.pricing_ttl_s = 0;
SELECT emu.clear_requests();
SELECT count(*) FROM twilio_numbers.numbers_pricing('US');
SELECT count(*) AS pricing_requests FROM emu.log WHERE path LIKE '/v1/PhoneNumbers/%';
RESET twilio_numbers.pricing_ttl_s;

-- the markup applies where price_list has no row: 1.15 * 1.10 = 1.265 -> 1.27 (half-up)
SET twilio_numbers.markup_percent = 10;
SELECT number_type, current_price, setup_price, monthly_price FROM twilio_numbers.numbers_pricing('US');
SELECT DISTINCT setup_price, monthly_price, currency
FROM twilio_numbers.numbers_search('US', max_results => 5);
RESET twilio_numbers.markup_percent;

-- price_list overrides Twilio's price, per country and type
INSERT INTO twilio_numbers.price_list (iso_country, number_type, setup_price, monthly_price, currency)
VALUES ('US', 'local', 0.50, 2.00, 'USD'),
       ('US', 'national', 1.00, 3.00, 'USD');
SELECT * FROM twilio_numbers.numbers_pricing('US');
SELECT DISTINCT setup_price, monthly_price, currency
FROM twilio_numbers.numbers_search('US', max_results => 5);
SELECT DISTINCT setup_price, monthly_price, currency
FROM twilio_numbers.numbers_search('US', number_type => 'toll_free', max_results => 5);

-- price_list rows are checked
INSERT INTO twilio_numbers.price_list VALUES ('usa', 'local', 0, 1, 'USD');
INSERT INTO twilio_numbers.price_list VALUES ('CA', 'local', 0, -1, 'USD');
INSERT INTO twilio_numbers.price_list VALUES ('CA', 'tollfree', 0, 1, 'USD');
DELETE FROM twilio_numbers.price_list;

-- a country Twilio does not price: no rows
SELECT count(*) FROM twilio_numbers.numbers_pricing('AQ');
