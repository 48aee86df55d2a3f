# A copy never acts as the original: pg_dump of a database holding numbers,
# a release and a compensation queued (Twilio failing their DELETEs), restored
# into a second cluster with the same Twilio account and emulator.  The copy
# (its requests told apart by the API key it uses) sends nothing but GETs;
# release, update, transfer, trunk and purchase refuse with TN020; its
# reconcile only reports; the original keeps working.  After the original
# stops and a DBA runs numbers_make_live() on the copy, the copy works.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TwilioNumbersTest;

my $emu = start_emulator();
my @fast = (
	"twilio_numbers.worker_interval_ms = 100", "twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 300", "twilio_numbers.reconcile_interval_s = 1",
	"twilio_numbers.queue_max_attempts = 1000");
my $orig = new_node('original', $emu, @fast);
my $acct = new_account($orig, 'Copied Ltd', 100);
my $other = new_account($orig, 'Other Ltd', 100);
$orig->safe_psql('postgres',
	"SELECT twilio_numbers.numbers_purchase($acct, ARRAY['+13125550100', '+13125550101', '+13125550102'])");

# a release and a compensation queued, their DELETEs failing for now
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers', action => 'status', status => 500, times => 0);
$orig->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+13125550100')");
$orig->safe_psql('postgres',
	"BEGIN; SELECT twilio_numbers.numbers_purchase($acct, '+13125550105'); ROLLBACK;");
ok($orig->poll_query_until('postgres',
	"SELECT count(*) = 2 AND bool_and(last_error IS NOT NULL) FROM twilio_numbers.work_queue "
	  . "WHERE status = 'pending' AND kind IN ('release', 'compensate')"),
	'a release and a compensation are queued, failing');

my $dump = PostgreSQL::Test::Utils::tempdir() . '/orig.dump';
$orig->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $orig->connstr('postgres') ], 'pg_dump of the original');

# the copy: another cluster, same Twilio account, its requests made with the API key
my $creds = PostgreSQL::Test::Utils::tempdir() . '/copy.credentials';
open my $fh, '>', $creds or die $!;
print $fh "account_sid = $ENV{TN_ACCOUNT_SID}\napi_key = $ENV{TN_API_KEY}\napi_secret = $ENV{TN_API_SECRET}\n";
close $fh;
chmod 0600, $creds;
my $copy = new_node('copy', $emu, @fast, "twilio_numbers.database = 'copydb'",
	"twilio_numbers.credentials_file = '$creds'");
$copy->safe_psql('postgres', 'CREATE DATABASE copydb');
$copy->command_ok([ 'pg_restore', '--exit-on-error', '-d', $copy->connstr('copydb'), $dump ],
	'restored into a second cluster');
is($copy->safe_psql('copydb', 'SELECT status FROM twilio_numbers.numbers_incarnation()'), 'held copy',
	'the restored database knows it is a copy');
is($copy->safe_psql('copydb',
	"SELECT count(*) FROM twilio_numbers.work_queue WHERE status = 'pending'"), '2',
	'the original\'s queued jobs came along');

sub copy_requests
{
	return [ grep { ($_->{auth_user} // '') eq $ENV{TN_API_KEY} } @{ emu_requests($emu) } ];
}

# a while of the copy's worker running: reconcile interval 1 s, wakes every 100 ms
$copy->poll_query_until('copydb', "SELECT pid IS NOT NULL FROM twilio_numbers.worker_status")
  or die 'no worker in the copy';
sleep 5;
my @writes = grep { $_->{method} ne 'GET' } @{ copy_requests() };
is(scalar @writes, 0, 'in 5 s the copy\'s worker sent nothing but GETs')
  or diag explain \@writes;
my $attempts_restored = $copy->safe_psql('copydb',
	"SELECT string_agg(attempts || ' ' || updated_at, ',' ORDER BY job_id) FROM twilio_numbers.work_queue WHERE status = 'pending'");
sleep 1;
is($copy->safe_psql('copydb',
	"SELECT string_agg(attempts || ' ' || updated_at, ',' ORDER BY job_id) FROM twilio_numbers.work_queue WHERE status = 'pending'"),
	$attempts_restored, 'no queued job is tried in the copy');
my $log = slurp_file($copy->logfile);
my @warnings = $log =~ /WARNING:  twilio_numbers worker: database "copydb" is a copy held from Twilio/g;
is(scalar @warnings, 1, 'one WARNING says the copy is held');

# every change refused, with the reason and what to do
for my $try (
	[ 'release', "SELECT twilio_numbers.numbers_release($acct, '+13125550101')" ],
	[ 'update', "SELECT twilio_numbers.numbers_update($acct, '+13125550101', friendly_name => 'x')" ],
	[ 'transfer', "SELECT twilio_numbers.numbers_transfer('+13125550101', $acct, $other)" ],
	[ 'trunk', "SELECT twilio_numbers.numbers_trunk_assign($acct, '+13125550101', 'TK00000000000000000000000000000001')" ],
	[ 'purchase', "SELECT twilio_numbers.numbers_purchase($acct, '+13125550109')" ])
{
	my ($ret, $out, $err) = $copy->psql('copydb', "\\set VERBOSITY verbose\n$try->[1]");
	like($err, qr/TN020: this database is a copy held from Twilio/, "$try->[0] refused in the copy (TN020)");
	like($err, qr/Nothing was sent to Twilio/, '... nothing sent') if $try->[0] eq 'release';
	like($err, qr/numbers_make_live\(\)/, '... the hint says how to make it live') if $try->[0] eq 'release';
}
my $queue_before = $copy->safe_psql('copydb', 'SELECT count(*) FROM twilio_numbers.work_queue');
my $drift_before = $copy->safe_psql('copydb', 'SELECT count(*) FROM twilio_numbers.drift');
my $report = $copy->safe_psql('copydb', 'SELECT finding, action FROM twilio_numbers.numbers_reconcile()');
like($report, qr/^orphan_at_twilio\|none: a held copy only reports \(live, it would be: /m,
	'its reconcile reports the compensation it would wait for');
unlike($report, qr/\|(?!none: a held copy only reports)/, 'its reconcile only reports')
  or diag $report;
is($copy->safe_psql('copydb', 'SELECT count(*) FROM twilio_numbers.work_queue'), $queue_before,
	'and queues nothing');
is($copy->safe_psql('copydb', 'SELECT count(*) FROM twilio_numbers.drift'), $drift_before, 'nor records anything');
is($copy->safe_psql('copydb', "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 2)"), '2',
	'searches work in the copy');
is($copy->safe_psql('copydb', "SELECT count(*) FROM twilio_numbers.account_numbers"), '3',
	'and reports (the rows as copied)');
@writes = grep { $_->{method} ne 'GET' } @{ copy_requests() };
is(scalar @writes, 0, 'still nothing but GETs from the copy');

# the original keeps working
emu($emu, 'DELETE', '/_emulator/faults');
ok(wait_queue_drained($orig), 'the original settles its queue once Twilio answers');
$orig->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+13125550102')");
ok(wait_queue_drained($orig), 'and releases another number');
is(emu_owned($emu), '+13125550101', 'Twilio holds what the original holds');
is(scalar(grep { $_->{method} ne 'GET' } @{ copy_requests() }), 0, 'none of it came from the copy');

# the original stops for good; the DBA makes the copy live
$orig->stop;
like($copy->safe_psql('copydb', 'SELECT twilio_numbers.numbers_make_live()'), qr/^live as system \d+, timeline 1, database copydb \(was /,
	'numbers_make_live() on the copy');
is($copy->safe_psql('copydb', 'SELECT status FROM twilio_numbers.numbers_incarnation()'), 'live', 'the copy is live');
ok($copy->poll_query_until('copydb',
	"SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue WHERE status = 'pending')"),
	'its queue drains (the original\'s jobs: already done at Twilio, 404 counts as gone)');
is($copy->safe_psql('copydb', "SELECT twilio_numbers.numbers_release($acct, '+13125550101') >= 0"), 't',
	'a release in the copy is accepted');
ok($copy->poll_query_until('copydb',
	"SELECT status = 'released' FROM twilio_numbers.owned_numbers WHERE phone_number = '+13125550101'"),
	'and done');
is(emu_owned($emu), '', 'by the copy, at Twilio');
ok(scalar(grep { $_->{method} eq 'DELETE' } @{ copy_requests() }) >= 1, 'with the copy\'s credentials');
like(slurp_file($copy->logfile), qr/database "copydb" is now the live incarnation at Twilio/, 'the log says so');

# detaching: refused for the live database
my ($ret, $out, $err) = $copy->psql('copydb', 'SELECT twilio_numbers.numbers_detach()');
like($err, qr/is the live incarnation at Twilio; it cannot be detached/, 'the live database cannot be detached');

# staging: another restore of the dump, detached for good
$copy->safe_psql('postgres', 'CREATE DATABASE staging');
$copy->command_ok([ 'pg_restore', '--exit-on-error', '-d', $copy->connstr('staging'), $dump ], 'restored again');
like($copy->safe_psql('staging', 'SELECT twilio_numbers.numbers_detach()'), qr/^detached: database staging never acts/,
	'numbers_detach() on a held copy');
is($copy->safe_psql('staging', 'SELECT status FROM twilio_numbers.numbers_incarnation()'), 'detached', 'it is detached');
($ret, $out, $err) = $copy->psql('staging', 'SELECT twilio_numbers.numbers_make_live()');
like($err, qr/this database was detached from Twilio for good/, 'for good: it cannot be made live');
is($copy->safe_psql('staging', "SELECT count(*) FROM twilio_numbers.owned_numbers"), '3', 'its rows are kept');

$copy->stop;
done_testing();
