--
-- Bad input: a clear message and SQLSTATE 22023, before any HTTP request
--
SELECT emu.clear_faults(), emu.clear_requests();
SELECT emu.clear_requests();

SELECT emu.try(stmt) FROM unnest(ARRAY[
  $$SELECT * FROM twilio_numbers.numbers_search(country => 'USA')$$,
  $$SELECT * FROM twilio_numbers.numbers_search(country => 'U1')$$,
  $$SELECT * FROM twilio_numbers.numbers_search(country => 'ZZ')$$,
  $$SELECT * FROM twilio_numbers.numbers_search(country => NULL)$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', number_type => 'tollfree')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', area_code => '41')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', area_code => '115')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', area_code => '4a5')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('GB', area_code => '207')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '5')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '12345678901234567')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '55-55')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '5*5')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '*5')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '1+415')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '55$5')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '+*55')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '55*$')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', contains => '**')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_number => '4155550100')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_number => '+1415555')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => '37.7,')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => '97.7,-122.4')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => '37.7,-222.4')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_lat_long => 'here')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_number => '+14155550100', near_lat_long => '37.7,-122.4')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', distance => 10)$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_number => '+14155550100', distance => 501)$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', near_number => '+14155550100', distance => -1)$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', in_rate_center => 'SNFC CNTRL')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('GB', in_region => 'England')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('DE', near_lat_long => '52.5,13.4')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', in_locality => '')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', in_locality => repeat('x', 65))$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', in_region => e'C\nA')$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', max_results => 0)$$,
  $$SELECT * FROM twilio_numbers.numbers_search('US', max_results => 1001)$$,
  $$SELECT * FROM twilio_numbers.numbers_pricing('United States')$$,
  $$SELECT * FROM twilio_numbers.numbers_pricing('XX')$$
]) AS stmt;

-- the hint says how to write a contains pattern
SELECT message, hint FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US', contains => '5*5')$$);

-- no request reached the emulator
SELECT count(*) AS requests FROM emu.log;

-- NULL country for the STRICT pricing function is no call at all
SELECT count(*) FROM twilio_numbers.numbers_pricing(NULL);
