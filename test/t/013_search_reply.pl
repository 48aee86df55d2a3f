# numbers_search reads any valid JSON form of a search reply into the same
# rows, and refuses what is not valid JSON: the spec's forms (numbers for
# coordinates, lower-case or mixed-case capability keys, booleans as
# strings), escapes of every kind, unknown and nested keys, and broken
# replies, served as written by test/t/reply_server.js (one reply per area
# code).  The emulator covers Twilio's own wire form.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $dir = PostgreSQL::Test::Utils::tempdir();
my %replies;

# the spec's form, pretty-printed, with things to skip in between
$replies{201} = <<'JSON';
{
  "uri": "/2010-04-01/Accounts/AC0/AvailablePhoneNumbers/US/Local.json",
  "available_phone_numbers": [
    {
      "capabilities": {"voice": true, "sms": "TRUE", "mms": "false", "fax": null},
      "phone_number": "+12015550100",
      "friendly_name": "(201) 555-0100",
      "lata": 224,
      "latitude": 40.7357,
      "longitude": -7.4e1,
      "beta": "false",
      "region": "NJ",
      "extra": {"nested": [1, {"deep": [null, true, "x"]}], "phone_number": "not this one"},
      "iso_country": null,
      "address_requirements": "none"
    },
    17,
    "not a number",
    [{"phone_number": "+12015550109"}],
    {"phone_number": "+12015550101", "phone_number": "+12015550102",
     "capabilities": {"Voice": false, "SmS": true, "voices": true}, "beta": true,
     "latitude": "40.50", "longitude": "west"}
  ],
  "next_page_uri": null
}
JSON

# escapes in values and keys; raw UTF-8
$replies{202} = '{"available_phone_numbers":[{"phone_number":"+12025550100",'
  . '"friendly_name":"Z\u00fcrich \"HQ\"\t\/ \ud83d\ude00","locality":"Zürich",'
  . '"ph\u006fne_number":"+12025550199","region":"a\\\\b","capabilities":{"\u0053MS":true}}]}';

# valid JSON without numbers
$replies{203} = '[1, 2]';
$replies{204} = '{"available_phone_numbers": []}';

# not valid JSON
my %broken = (
	210 => 'trailing garbage',
	211 => 'a lone high surrogate',
	212 => 'a lone low surrogate',
	213 => 'an escaped NUL',
	214 => 'a raw control character',
	215 => 'a number with a leading zero',
	216 => 'a number ending in a point',
	217 => 'a cut-off reply',
	218 => 'a misspelt literal',
	219 => 'a byte-order mark',
	220 => 'an unknown escape',
	221 => 'a trailing comma in an array',
	222 => 'a trailing comma in an object',
	223 => 'only whitespace',
	224 => 'a key without a value');
$replies{210} = '{"available_phone_numbers":[]} x';
$replies{211} = '{"available_phone_numbers":[{"phone_number":"\ud83d"}]}';
$replies{212} = '{"available_phone_numbers":[{"phone_number":"\ude00x"}]}';
$replies{213} = '{"available_phone_numbers":[{"phone_number":"a\u0000b"}]}';
$replies{214} = "{\"available_phone_numbers\":[{\"phone_number\":\"a\x01b\"}]}";
$replies{215} = '{"available_phone_numbers":[{"lata":01}]}';
$replies{216} = '{"available_phone_numbers":[{"lata":1.}]}';
$replies{217} = '{"available_phone_numbers":[{"phone_number":"+1201';
$replies{218} = '{"available_phone_numbers":[{"beta":truex}]}';
$replies{219} = "\xef\xbb\xbf{}";
$replies{220} = '{"available_phone_numbers":[{"region":"\x41"}]}';
$replies{221} = '{"available_phone_numbers":[1,]}';
$replies{222} = '{"available_phone_numbers":[],}';
$replies{223} = "  \n ";
$replies{224} = '{"available_phone_numbers":[{"region":}]}';

# nested past the stack limit
$replies{230} = '{"available_phone_numbers":[' . ('[' x 200000) . (']' x 200000) . ']}';

for my $code (keys %replies)
{
	open my $fh, '>:raw', "$dir/$code.json" or die "$dir/$code.json: $!";
	print $fh $replies{$code};
	close $fh;
}

my $server = spawn_listening(qr{listening on (http://\S+)},
	'node', "$ENV{TN_ROOT}/test/t/reply_server.js", $dir);
my $node = new_cluster('reply', $server);
# priced from the price list: no request but the search itself
$node->safe_psql('postgres', <<'SQL');
INSERT INTO twilio_numbers.price_list (iso_country, number_type, setup_price, monthly_price)
VALUES ('US', 'local', 1.00, 2.50);
CREATE FUNCTION try_search(area text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM twilio_numbers.numbers_search('US', area_code => area);
    RETURN n || ' rows';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;
SQL

my $columns = 'phone_number, friendly_name, number_type, iso_country, region, locality, lata, '
  . 'latitude, longitude, address_requirements, beta, voice, sms, mms, fax, '
  . 'setup_price, monthly_price, currency';
is( $node->safe_psql('postgres',
		"SELECT $columns FROM twilio_numbers.numbers_search('US', area_code => '201')"),
	"+12015550100|(201) 555-0100|local|US|NJ||224|40.7357|-74|none|f|t|t|f||1.00|2.50|USD\n"
	  . "+12015550102||local|US||||40.50|||t|f|t|||1.00|2.50|USD",
	"the spec's forms: numbers, strings for booleans, capability keys in any case, unknown keys skipped");

is( $node->safe_psql('postgres', <<'SQL'),
SELECT phone_number,
       friendly_name = E'Z\u00fcrich "HQ"\t/ \U0001F600',
       locality = E'Z\u00fcrich', region = E'a\\b', sms
FROM twilio_numbers.numbers_search('US', area_code => '202')
SQL
	'+12025550199|t|t|t|t', 'escapes decoded in values and keys, raw UTF-8 kept');

is($node->safe_psql('postgres', "SELECT try_search('203'), try_search('204')"),
	'0 rows|0 rows', 'valid JSON without numbers gives no rows');

for my $code (sort keys %broken)
{
	like($node->safe_psql('postgres', "SELECT try_search('$code')"),
		qr/^TN007 could not search Twilio's available numbers: Twilio's reply is not valid JSON$/,
		"refused: $broken{$code}");
}

like($node->safe_psql('postgres', "SELECT try_search('230')"),
	qr/^54001 /, 'nesting past max_stack_depth is an error, not a crash');

is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', area_code => '201')"),
	'2', 'the session carries on');

done_testing();
