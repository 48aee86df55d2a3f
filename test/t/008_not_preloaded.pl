# Without shared_preload_libraries the catalog still works, and everything
# that needs the background worker says so plainly; in a database other than
# the worker's, purchases are refused with the reason.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_cluster('plain', $emu);

is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 5)"),
	'5', 'the catalog works without preloading');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 1); "
	  . "SELECT count(*) FROM twilio_numbers.call_log"), "1\n1",
	'the call log is kept per session (shared only when preloaded)');
my $acct = new_account($node, 'Plain', 10);
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT twilio_numbers.numbers_purchase($acct, '+12125550100')");
like($err, qr/twilio_numbers must be loaded via shared_preload_libraries to buy, change or release numbers/,
	'a purchase says the library must be preloaded');
like($err, qr/HINT:  Add twilio_numbers to shared_preload_libraries/, 'and how to fix it');
is(scalar @{ emu_requests($emu, 'POST') }, 0, 'and sends nothing to Twilio');
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM twilio_numbers.worker_status');
like($err, qr/not loaded via shared_preload_libraries, so there is no worker/, 'worker_status says there is no worker');
($ret, $out, $err) = $node->psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+12125550100')");
like($err, qr/must be loaded via shared_preload_libraries/, 'so does a release');

# preloaded, but used in another database than the worker's
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'twilio_numbers'\n");
$node->restart;
$node->safe_psql('postgres', 'CREATE DATABASE elsewhere');
$node->safe_psql('elsewhere', 'CREATE EXTENSION twilio_numbers');
$node->safe_psql('elsewhere', "INSERT INTO twilio_numbers.accounts (name) VALUES ('x')");
($ret, $out, $err) = $node->psql('elsewhere', "SELECT twilio_numbers.numbers_purchase(1, '+12125550100')");
like($err, qr/numbers can only be bought, changed or released in database "postgres"/,
	'another database: refused, naming the worker\'s database');
is($node->safe_psql('postgres', "SELECT phone_number FROM twilio_numbers.numbers_purchase($acct, '+12125550100')"),
	'+12125550100', 'in the worker\'s database the purchase goes through');

$node->stop;
done_testing();
