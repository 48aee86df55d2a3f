# DROP EXTENSION refuses to lose money: refused while live numbers or ledger
# entries exist (DROP SCHEMA ... CASCADE too), saying what would be lost;
# with twilio_numbers.allow_drop the drop goes through, the schema with it;
# the worker notices and waits quietly; CREATE EXTENSION again and the
# worker reconciles at once, reporting the numbers left at Twilio.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('drop', $emu, "twilio_numbers.worker_interval_ms = 100");
my $acct = new_account($node, 'Dropped Ltd', 50);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct, ARRAY['+15125550100', '+15125550101'])");
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+15125550101')");
ok(wait_queue_drained($node), 'one number bought and kept, one released');

my $counts = q{SELECT (SELECT count(*) FROM twilio_numbers.owned_numbers) || ' ' ||
  (SELECT count(*) FROM twilio_numbers.ledger) || ' ' || (SELECT count(*) FROM twilio_numbers.accounts)};
my $before = $node->safe_psql('postgres', $counts);

my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nDROP EXTENSION twilio_numbers");
like($err, qr/ERROR:  2BP01: extension twilio_numbers holds 1 live number and \d+ ledger entries/,
	'DROP EXTENSION is refused (2BP01), saying what it holds');
like($err, qr/DETAIL:  Dropping it deletes the customer accounts \(balances totalling [\d.]+\), the ledger/,
	'what would be lost');
like($err, qr/leaves the 1 number rented at Twilio/, 'and what it leaves at Twilio');
like($err, qr/HINT:  Export first \(pg_dump --schema=twilio_numbers\), release the numbers/, 'how to export or release');
($ret, $out, $err) = $node->psql('postgres', 'DROP SCHEMA twilio_numbers CASCADE');
like($err, qr/extension twilio_numbers holds 1 live number/, 'DROP SCHEMA ... CASCADE is refused too');
is($node->safe_psql('postgres', $counts), $before, 'nothing was lost');

# an unused database's extension drops without ceremony
$node->safe_psql('postgres', 'CREATE DATABASE scratch');
$node->safe_psql('scratch', 'CREATE EXTENSION twilio_numbers');
$node->safe_psql('scratch', 'DROP EXTENSION twilio_numbers');
is($node->safe_psql('scratch', "SELECT count(*) FROM pg_namespace WHERE nspname = 'twilio_numbers'"), '0',
	'an empty extension drops, its schema with it');

# the DBA who means it
my $drop_at = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "SET twilio_numbers.allow_drop = on; DROP EXTENSION twilio_numbers");
is($ret, 0, 'with allow_drop the drop goes through') or diag $err;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_namespace WHERE nspname = 'twilio_numbers'"), '0',
	'the schema went with it, grants and all');
is(emu_owned($emu), '+15125550100', 'the number stays rented at Twilio (as the refusal said)');

# the worker notices and waits quietly
wait_until(sub { slurp_file($node->logfile) =~ /waiting for CREATE EXTENSION twilio_numbers in database "postgres"/ },
	'the worker\'s waiting line');
emu($emu, 'DELETE', '/_emulator/requests');
my $log_at = -s $node->logfile;
sleep 2;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'twilio_numbers worker'"),
	'1', 'the worker still runs');
is(scalar @{ emu_requests($emu) }, 0, 'and sends nothing');
my $log = substr(slurp_file($node->logfile), $log_at);
unlike($log, qr/ERROR|FATAL/, 'and logs no error while it waits');

# re-created: the worker reconciles at once (the interval is an hour)
$node->safe_psql('postgres', 'CREATE EXTENSION twilio_numbers');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM twilio_numbers.drift WHERE finding = 'unmanaged_at_twilio' AND phone_number = '+15125550100'"),
	're-created, the worker reconciles at once and reports the number left at Twilio');
my @waiting = substr(slurp_file($node->logfile), $drop_at) =~ /waiting for CREATE EXTENSION twilio_numbers/g;
is(scalar @waiting, 1, 'one waiting line for the whole episode');

$node->stop;

# Before the database exists: the worker and the recorder each fail to
# connect once, then wait quietly (one LOG line each) instead of a FATAL
# every few seconds; once it is created they connect, and the worker's start
# line names the version, the database and the Twilio account.
my $later = new_node('later', $emu, "twilio_numbers.database = 'later'", "twilio_numbers.worker_interval_ms = 100");
wait_until(sub { my $l = slurp_file($later->logfile);
		$l =~ /twilio_numbers worker: waiting for database "later" to be created/
		  && $l =~ /twilio_numbers attempt recorder: waiting for database "later" to be created/ },
	'both background processes to wait for the database');
sleep 6;    # longer than the worker's restart interval (5 s)
# the worker, the recorder and the queue runners
my $processes = 2 + $later->safe_psql('postgres', 'SHOW twilio_numbers.queue_workers');
wait_until(sub { my @w = slurp_file($later->logfile) =~ /waiting for database "later" to be created/g; @w == $processes },
	'every background process to wait');
sleep 3;
my $waiting_log = slurp_file($later->logfile);
my @fatals = $waiting_log =~ /FATAL:  database "later" does not exist/g;
ok(@fatals <= $processes, "at most one FATAL per process (" . scalar(@fatals) . " for $processes), not one every few seconds");
my @waits = $waiting_log =~ /waiting for database "later" to be created/g;
is(scalar @waits, $processes, 'and one waiting line each');
$later->safe_psql('postgres', 'CREATE DATABASE later');
$later->safe_psql('later', 'CREATE EXTENSION twilio_numbers');
ok($later->poll_query_until('later', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status'),
	'once the database exists the worker connects and reconciles');
my $version = $later->safe_psql('later', 'SELECT library FROM twilio_numbers.numbers_version()');
like(slurp_file($later->logfile),
	qr/LOG:  twilio_numbers worker \Q$version\E started in database "later" for Twilio account \Q$ENV{TN_ACCOUNT_SID}\E \(credentials from settings\)/,
	'its start line names the version, the database and the Twilio account');
unlike(slurp_file($later->logfile), qr/\Q$ENV{TN_AUTH_TOKEN}\E/, 'never the secret');

# an older schema under this library: one WARNING, the worker waits; updated, it runs
$later->safe_psql('later', 'DROP EXTENSION twilio_numbers');
my $old_at = -s $later->logfile;
$later->safe_psql('later', "CREATE EXTENSION twilio_numbers VERSION '0.3'");
wait_until(sub { substr(slurp_file($later->logfile), $old_at) =~ /WARNING:  twilio_numbers worker: the library is version \Q$version\E but the extension in database "later" is version 0\.3; the worker waits/ },
	'the version mismatch WARNING');
sleep 1;
my @mismatch = substr(slurp_file($later->logfile), $old_at) =~ /the library is version/g;
is(scalar @mismatch, 1, 'a library/schema version mismatch: one WARNING');
like(substr(slurp_file($later->logfile), $old_at), qr/HINT:  Run ALTER EXTENSION twilio_numbers UPDATE in database "later"/,
	'saying what to run');
my $updated_at = $later->safe_psql('later', 'SELECT clock_timestamp()');
$later->safe_psql('later', 'ALTER EXTENSION twilio_numbers UPDATE');
ok($later->poll_query_until('later',
	"SELECT last_reconcile_at > '$updated_at' FROM twilio_numbers.worker_status"),
	'updated, the worker runs again (its start-up reconcile at once)');
$later->stop;
done_testing();
