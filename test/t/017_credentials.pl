# Credentials that leave no trace: twilio_numbers.credentials_file, a file
# outside the data directory checked as ssl_key_file is, rotated by
# rewriting it and reloading.  At log_min_messages = debug2 and
# log_statement = all the secrets are nowhere in the server log nor in
# postgresql.auto.conf, and the backends and the worker use the new ones
# without a restart (the emulator's request log says which credentials each
# request came with).  A 401 outage longer than the queue's retry schedule
# kills no job.  The settings route (ALTER SYSTEM) is tried as the README
# describes it: the log is clean, postgresql.auto.conf holds it.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $dir = PostgreSQL::Test::Utils::tempdir();
my $creds = "$dir/twilio.credentials";

sub write_creds
{
	my ($text, $mode) = @_;
	open my $fh, '>', "$creds.new" or die $!;
	print $fh $text;
	close $fh;
	chmod($mode // 0600, "$creds.new") or die $!;
	rename("$creds.new", $creds) or die $!;
}

# the first credentials: the API key
write_creds("# Twilio\napi_key = $ENV{TN_API_KEY}\napi_secret = '$ENV{TN_API_SECRET}'\n"
	  . "account_sid = $ENV{TN_ACCOUNT_SID}\n");

my $node = PostgreSQL::Test::Cluster->new('creds');
$node->init(extra => [ '--locale=C.UTF-8', '--encoding=UTF8' ]);
my $url = $emu->{url};
$node->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'twilio_numbers'",
	"twilio_numbers.api_url = '$url'",
	"twilio_numbers.pricing_url = '$url'",
	"twilio_numbers.trunking_url = '$url'",
	"twilio_numbers.numbers_url = '$url'",
	"twilio_numbers.credentials_file = '$creds'",
	"twilio_numbers.retry_backoff_ms = 50",
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 500",
	"log_min_messages = debug2",
	"log_statement = all") . "\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION twilio_numbers');
my $worker = worker_pid($node);

# which credentials each request came with
sub users_of
{
	my ($method, $path_re) = @_;
	my %u = map { ($_->{auth_user} // '') => 1 } @{ emu_requests($emu, $method, $path_re) };
	return join(',', sort keys %u);
}

my $acct = new_account($node, 'Rotation', 50);
is($node->safe_psql('postgres',
	"SELECT phone_number FROM twilio_numbers.numbers_purchase($acct, '+12125550100')"),
	'+12125550100', 'a purchase with the credentials file');
is(users_of('POST', qr/IncomingPhoneNumbers/), $ENV{TN_API_KEY}, 'sent with the file\'s API key');

# permissions checked as for ssl_key_file
chmod(0644, $creds);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 1)");
like($err, qr/could not read the Twilio credentials from twilio_numbers.credentials_file/,
	'a credentials file others can read is refused');
like($err, qr/has group or world access/, 'saying why');
like($err, qr/Nothing was sent to Twilio/, 'and that nothing was sent');
chmod(0600, $creds);

# inside the data directory: refused (every copy of the cluster would carry it)
my $inside = $node->data_dir . '/twilio.credentials';
open my $fh, '>', $inside or die $!;
print $fh "auth_token = x\n";
close $fh;
chmod(0600, $inside);
$node->append_conf('postgresql.conf', "twilio_numbers.credentials_file = '$inside'\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 1)");
like($err, qr/is inside the data directory/, 'a credentials file inside the data directory is refused');
unlink $inside;
$node->append_conf('postgresql.conf', "twilio_numbers.credentials_file = '$creds'\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

# Rotate: the file now holds the account's auth token.  One session that
# searched before the rotation searches again after the reload; the worker
# releases a number.
$node->safe_psql('postgres', "SELECT pg_sleep(0.3)");
emu($emu, 'DELETE', '/_emulator/requests');
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 1)");
is(users_of('GET', qr/AvailablePhoneNumbers/), $ENV{TN_API_KEY}, 'before the rotation: the API key');

emu($emu, 'DELETE', '/_emulator/requests');
# a session open across the rotation: psql reads its commands one by one
my $in = '';
my $sout = '';
my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres') ], '<', \$in, '>', \$sout, '2>', \$sout);
$in .= "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 1);\n";
wait_until(sub { $h->pump_nb; $sout =~ /^1$/m }, 'the first search of the session');
write_creds("account_sid = '$ENV{TN_ACCOUNT_SID}'\nauth_token = $ENV{TN_AUTH_TOKEN}\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$in .= "SELECT pg_sleep(0.5);\nSELECT 'second', count(*) FROM twilio_numbers.numbers_search('US', max_results => 1);\n";
wait_until(sub { $h->pump_nb; $sout =~ /^second\|1$/m }, 'the second search of the session');
$in .= "\\q\n";
$h->finish;
my @searches = @{ emu_requests($emu, 'GET', qr/AvailablePhoneNumbers/) };
is(scalar @searches, 2, 'the session searched twice');
is($searches[0]{auth_user}, $ENV{TN_API_KEY}, 'first with the old credentials');
is($searches[1]{auth_user}, $ENV{TN_ACCOUNT_SID}, 'then, after the reload, with the new ones (same backend)');

is($node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+12125550100') > 0"), 't',
	'a release');
wait_queue_drained($node);
is(users_of('DELETE', qr/IncomingPhoneNumbers/), $ENV{TN_ACCOUNT_SID}, 'the worker released it with the new token');
is(worker_pid($node), $worker, 'the same worker process (no restart)');
is(emu_owned($emu), '', 'the number is gone from Twilio');

# An outage is not a job's failure: the token rotated at Twilio before the
# database (401 on every path) for longer than the queue's whole retry
# schedule (3 attempts, 100-500 ms apart), with two releases and a
# compensation pending: no dead letter, and once the file is fixed every
# number is gone from Twilio.
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.queue_max_attempts = 3');
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.reconcile_interval_s = 1');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->safe_psql('postgres',
	"SELECT twilio_numbers.numbers_purchase($acct, ARRAY['+12125550110', '+12125550111', '+12125550112'])");
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'status', status => 500, times => 0);
$node->safe_psql('postgres', "BEGIN; SELECT twilio_numbers.numbers_purchase($acct, '+12125550113'); ROLLBACK;");
ok($node->poll_query_until('postgres',
	"SELECT last_error IS NOT NULL FROM twilio_numbers.work_queue WHERE kind = 'compensate' AND phone_number = '+12125550113'"),
	'a compensation is pending');
my $outage_at = -s $node->logfile;
write_creds("account_sid = $ENV{TN_ACCOUNT_SID}\nauth_token = not-the-token-twilio-has-now\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
# the worker has the new (wrong) token once its reconcile listing is refused
wait_until(sub { grep { $_->{status} && $_->{status} == 401 } @{ emu_requests($emu, 'GET', qr/IncomingPhoneNumbers\.json$/) } },
	'the worker\'s listing to be refused');
emu($emu, 'DELETE', '/_emulator/faults');
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+12125550110'), "
	  . "twilio_numbers.numbers_release($acct, '+12125550111')");
emu($emu, 'DELETE', '/_emulator/requests');
sleep 5;
my @answers = map { $_->{status} } @{ emu_requests($emu) };
ok(@answers >= 6 && !grep({ $_ != 401 } @answers),
	'for 5 s Twilio answered every request 401 (' . scalar(@answers) . ' requests)');
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.queue_dead_letters"), '0',
	'no job became a dead letter');
is($node->safe_psql('postgres',
	"SELECT string_agg(kind || ' ' || phone_number || ' ' || attempts, ', ' ORDER BY phone_number) "
	  . "FROM twilio_numbers.work_queue WHERE status = 'pending' AND kind IN ('release', 'compensate')"),
	'release +12125550110 0, release +12125550111 0, compensate +12125550113 0',
	'the releases and the compensation wait, their attempts not spent');
my $during = substr(slurp_file($node->logfile), $outage_at);
my @warned = $during =~ /WARNING:  twilio_numbers worker: Twilio refuses the credentials/g;
is(scalar @warned, 1, 'one WARNING for the whole outage');
my @unlisted = $during =~ /WARNING:  twilio_numbers worker: reconcile could not list Twilio account \Q$ENV{TN_ACCOUNT_SID}\E \(HTTP 401/g;
is(scalar @unlisted, 1, 'and one for the account reconcile could not list (it tried every second)');
write_creds("account_sid = $ENV{TN_ACCOUNT_SID}\nauth_token = $ENV{TN_AUTH_TOKEN}\n");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(wait_queue_drained($node), 'the credentials fixed, the queue settles without a DBA');
is(emu_owned($emu), '+12125550112', 'every released or rolled-back number is gone from Twilio');
like(substr(slurp_file($node->logfile), $outage_at), qr/LOG:  twilio_numbers worker: Twilio answers again/,
	'and the log says the outage is over');
wait_until(sub { substr(slurp_file($node->logfile), $outage_at) =~ /LOG:  twilio_numbers worker: reconcile lists every managed Twilio account again/ },
	'reconcile to say it lists every account again');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET twilio_numbers.queue_max_attempts');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET twilio_numbers.reconcile_interval_s');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

# the settings route, as the README's old way: the log stays clean, the
# configuration file does not
my $alter_secret = 'alter-system-s3cret-value';
$node->safe_psql('postgres', "ALTER SYSTEM SET twilio_numbers.auth_token = '$alter_secret'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->safe_psql('postgres', "SELECT pg_sleep(0.5)");
$node->safe_psql('postgres', "SET twilio_numbers.auth_token = '$alter_secret-2'; SELECT 1");
$node->safe_psql('postgres', "ALTER SYSTEM RESET twilio_numbers.auth_token");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->safe_psql('postgres', "SELECT pg_sleep(0.5)");
# something logged at DEBUG2 by a backend after the reload
$node->safe_psql('postgres', "SELECT 1");

my $log = slurp_file($node->logfile);
my $auto = slurp_file($node->data_dir . '/postgresql.auto.conf');
ok($log =~ /parameter "twilio_numbers.auth_token" \.\.\. \(the rest is not logged/,
	'the log says the setting changed, without its value');
ok($log =~ /statement: ALTER SYSTEM SET twilio_numbers.auth_token \.\.\./, 'and shows the statement cut short');
unlike($log, qr/\Q$ENV{TN_AUTH_TOKEN}\E/, 'the rotated token is nowhere in the server log');
unlike($log, qr/\Q$ENV{TN_API_SECRET}\E/, 'nor the API secret');
unlike($log, qr/\Q$alter_secret\E/, 'nor a token set with ALTER SYSTEM or SET');
unlike($auto, qr/\Q$ENV{TN_AUTH_TOKEN}\E|\Q$ENV{TN_API_SECRET}\E/,
	'the credentials file route leaves nothing in postgresql.auto.conf');
ok(-s $node->logfile > 10000, 'the log is the debug2 one (' . (-s $node->logfile) . ' bytes)');

$node->stop;
done_testing();
