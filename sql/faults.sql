--
-- Twilio misbehaving: retries, rate limits, lost and damaged replies,
-- bad credentials, hangs.  Each case checks the outcome and what the
-- emulator's request log says was really sent.
--
SELECT emu.clear_faults(), emu.clear_requests();
SELECT count(*) FROM twilio_numbers.numbers_pricing('US');  -- warm the pricing cache

-- 503 then success: the GET is retried and the search succeeds
SELECT emu.clear_requests();
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "status", "status": 503, "code": 20503, "times": 1}');
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 5);
SELECT method, status FROM emu.log ORDER BY seq;

-- 429 with Retry-After: waited for, then retried
SELECT emu.clear_requests();
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "status", "status": 429, "code": 20429, "retry_after": 1, "times": 1}');
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 5);
SELECT method, status FROM emu.log ORDER BY seq;
-- the gap between the two requests honoured Retry-After
SELECT (max(at) - min(at)) >= interval '1 second' AS waited
FROM (SELECT at FROM twilio_numbers.call_log ORDER BY seq DESC LIMIT 2) last_two;

-- a connection reset before the request was served: retried
SELECT emu.clear_requests();
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "reset_before", "times": 1}');
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 5);
SELECT count(*) AS requests FROM emu.log;

-- 5xx every time: the retries run out, a clear error with Twilio's code
SELECT emu.clear_requests();
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "status", "status": 500, "code": 20500, "times": 0}');
SELECT * FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
SELECT count(*) AS requests FROM emu.log;   -- 1 + max_retries
SELECT emu.clear_faults();

-- 429 every time: TN008
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "status", "status": 429, "code": 20429, "times": 0}');
SET twilio_numbers.max_retries = 1;
SELECT state, message FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
RESET twilio_numbers.max_retries;
SELECT emu.clear_faults();

-- a malformed body: TN007, not a JSON syntax error from deep inside
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "malformed", "times": 0}');
SELECT state, message, hint FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
SELECT emu.clear_faults();

-- a truncated body on every try: the transfer error, after the retries
SELECT emu.clear_requests();
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "truncate", "times": 0}');
SELECT state, message FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
SELECT count(*) AS requests FROM emu.log;
SELECT emu.clear_faults();
-- once only: the retry gets a whole reply
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "truncate", "times": 1}');
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 5);

-- Twilio's own 4xx refusal: its code and message in the detail
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "status", "status": 400, "code": 21421, "times": 1}');
SELECT * FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);

-- wrong credentials: TN004 with 20003 in the detail, no retry
SELECT emu.clear_requests();
SET twilio_numbers.auth_token = 'not-the-token';
SELECT * FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
RESET twilio_numbers.auth_token;
SELECT count(*) AS requests, min(status) AS status, min(twilio_code) AS code FROM emu.log;

-- API key + secret authenticate too
SET twilio_numbers.auth_token = '';
SET twilio_numbers.api_key = 'SK00000000000000000000000000000001';
SET twilio_numbers.api_secret = 'ap1-s3cret-0f-the-test-key';
SELECT emu.clear_requests();
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 3);
SELECT auth_user FROM (SELECT r->>'auth_user' AS auth_user FROM emu.requests() r) a;
RESET twilio_numbers.api_key;
RESET twilio_numbers.api_secret;
RESET twilio_numbers.auth_token;

-- no credentials at all: 55000 before any request
SET twilio_numbers.account_sid = '';
SELECT * FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
RESET twilio_numbers.account_sid;

-- Twilio unreachable (nothing listens there): TN005
SET twilio_numbers.api_url = 'http://127.0.0.1:1';
SET twilio_numbers.max_retries = 0;
SELECT state, message FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
RESET twilio_numbers.api_url;
RESET twilio_numbers.max_retries;

-- a hang is ended by statement_timeout, and the session carries on
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "hang", "times": 1}');
SET statement_timeout = '1s';
SELECT count(*) FROM twilio_numbers.numbers_search('US');
RESET statement_timeout;
SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 4);

-- a hang is also ended by timeout_ms (the transfer's own limit)
SELECT emu.fault('{"path": "AvailablePhoneNumbers/US/Local", "action": "hang", "times": 0}');
SET twilio_numbers.timeout_ms = 300;
SET twilio_numbers.max_retries = 0;
SELECT state, message FROM emu.try_full($$SELECT * FROM twilio_numbers.numbers_search('US')$$);
RESET twilio_numbers.timeout_ms;
RESET twilio_numbers.max_retries;
SELECT emu.clear_faults();

-- base URLs must be a scheme and a host, nothing else
SET twilio_numbers.api_url = 'ftp://example.com';
SET twilio_numbers.api_url = 'https://user:pw@api.twilio.com';
SET twilio_numbers.api_url = 'https://api.twilio.com/2010-04-01';
