# Reconcile at scale, and it never waits on an application (issue 21).
#
# An account with 20,000 numbers at Twilio (put there by the emulator as if
# bought through its API, POST /_emulator/numbers, and adopted by the
# customer) is reconciled with one request per page of Twilio's listing when
# nothing differs, and the backend's memory does not grow with the account:
# the pass at 20,000 numbers peaks (VmHWM) within 20 MB of the same pass
# at 2,000 (about 10 MB: the work table's local buffers and the comparison's
# hash reach temp_buffers and work_mem, their bounds; before the work table
# was analyzed from a small sample, 27 MB), and within 50 MB of an idle
# backend.  shared_buffers is 1 MB
# here, so that VmHWM measures the backend's own memory: the shared buffers
# a pass touches are the cluster's cache (at most shared_buffers), not the
# backend's.
#
# Rows no listing showed (40 numbers released at Twilio behind our back)
# are looked up side by side, within the request budget.
#
# Then rows an application transaction holds (SELECT ... FOR UPDATE on a
# number, or on its account) are skipped, not waited for: the rest is
# reconciled, and the next pass after the application commits comes back
# for them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('reconcile_scale', $emu,
	"shared_buffers = 1MB",
	"twilio_numbers.worker_interval_ms = 100",
	# reconcile by hand only (after its start-up pass)
	"twilio_numbers.reconcile_interval_s = 0");
$node->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';

# VmHWM (kB) of a session's backend before and after some SQL, read in that
# session from /proc/self/status; returns (before, after, the SQL's output).
my $hwm = "SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\\s+(\\d+) kB')";
sub pass_hwm
{
	my ($sql) = @_;
	my @out = split /\n/, $node->safe_psql('postgres', "$hwm; SET statement_timeout = '120s'; $sql; $hwm");
	return ($out[0], $out[-1], $out[1]);
}

# A pass that finds nothing to do: its findings, requests, VmHWM growth (kB)
# and peak (kB).
sub quiet_pass
{
	emu($emu, 'DELETE', '/_emulator/requests');
	my ($before, $after, $findings) = pass_hwm('SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
	return ($findings, emu_requests($emu), $after - $before, $after);
}

my $idle = (pass_hwm('SELECT 1'))[1];
my $a = new_account($node, 'Big');

# ---- 2,000 numbers, then 20,000 ----
my %peak;
for my $n (2000, 20000)
{
	my $have = $node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.live_numbers WHERE account_id = $a");
	is(emu_add_numbers($emu, $n - $have)->{count}, $n - $have, ($n - $have) . ' numbers more at Twilio');
	is(adopt_listed($node, $emu, $a), $n - $have, 'adopted by the customer');
	$node->safe_psql('postgres', 'VACUUM ANALYZE');

	my ($findings, $log, $grew, $peak) = quiet_pass();
	is($findings, '0', "a pass over $n numbers finds nothing to do");
	my $pages = $n / 1000;
	my @listing = grep { $_->{method} eq 'GET' && $_->{path} =~ m{/IncomingPhoneNumbers\.json$} } @$log;
	is(scalar(@listing), $pages, "it lists the $pages pages");
	is(scalar(@$log), $pages, 'and asks nothing else (no look-up of a number the listing showed)');
	note sprintf('%d numbers: VmHWM %.1f MB (grew %.1f MB in the pass), idle backend %.1f MB',
		$n, $peak / 1024, $grew / 1024, $idle / 1024);
	$peak{$n} = $peak;
}
cmp_ok($peak{20000} - $peak{2000}, '<', 20 * 1024,
	'the backend peaks within 20 MB at 20,000 numbers of its peak at 2,000: memory does not grow with the account');
cmp_ok($peak{20000} - $idle, '<', 50 * 1024, 'and within 50 MB of an idle backend');

# ---- the look-ups of rows no listing showed run side by side ----
my @gone = split /\n/, $node->safe_psql('postgres',
	"SELECT twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $a ORDER BY number_id DESC LIMIT 40");
for my $sid (@gone)
{
	twilio_api($emu, 'DELETE', "/2010-04-01/Accounts/$ENV{TN_ACCOUNT_SID}/IncomingPhoneNumbers/$sid.json")->{status} == 204
	  or die "could not release $sid at Twilio";
}
emu_fault($emu, method => 'GET', path => 'IncomingPhoneNumbers/PN', action => 'latency', ms => 200, times => 0);
emu($emu, 'DELETE', '/_emulator/requests');
is($node->safe_psql('postgres', "SET statement_timeout = '120s'; "
		  . "SELECT count(*) FROM twilio_numbers.numbers_reconcile() WHERE finding = 'vanished_at_twilio'"),
	'40', '40 numbers released at Twilio behind our back are found vanished');
emu($emu, 'DELETE', '/_emulator/faults');
my @lookups = grep { $_->{path} =~ m{/IncomingPhoneNumbers/PN\w+\.json$} } @{ emu_requests($emu) };
is(scalar(@lookups), 80, 'after looking each up twice (its account, then again)');
my $overlap = max_overlap(\@lookups);
cmp_ok($overlap, '>', 1, "side by side ($overlap at once at most)");
cmp_ok($overlap, '<=', 16, 'within the request budget (max_concurrent_requests 16)');

# ---- rows an application holds are skipped, not waited for ----
# numbers removed at Twilio behind our back: x (held by an application),
# y (free), w (its account held); one renamed at Twilio: z (held)
my $c = new_account($node, 'Small');
emu_add_numbers($emu, 1);
is(adopt_listed($node, $emu, $c), 1, 'a second customer with one number');
my %n;
for my $row (split /\n/, $node->safe_psql('postgres', qq{
	(SELECT 'x', number_id, twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $a ORDER BY number_id LIMIT 1)
	UNION ALL
	(SELECT 'y', number_id, twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $a ORDER BY number_id OFFSET 1 LIMIT 1)
	UNION ALL
	(SELECT 'z', number_id, twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $a ORDER BY number_id OFFSET 2 LIMIT 1)
	UNION ALL
	(SELECT 'v', number_id, twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $a ORDER BY number_id OFFSET 3 LIMIT 1)
	UNION ALL
	(SELECT 'u', number_id, twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $a ORDER BY number_id OFFSET 4 LIMIT 1)
	UNION ALL
	(SELECT 'w', number_id, twilio_sid FROM twilio_numbers.live_numbers WHERE account_id = $c)}))
{
	my ($k, $id, $sid) = split /\|/, $row;
	$n{$k} = { id => $id, sid => $sid };
}
my $numbers = "/2010-04-01/Accounts/$ENV{TN_ACCOUNT_SID}/IncomingPhoneNumbers";
for my $k (qw(x y w))
{
	is(twilio_api($emu, 'DELETE', "$numbers/$n{$k}{sid}.json")->{status}, 204, "number $k released at Twilio");
}
is(twilio_api($emu, 'POST', "$numbers/$n{z}{sid}.json", { FriendlyName => 'renamed elsewhere' })->{status}, 200,
	'number z renamed at Twilio');
# v (held) put into a Messaging Service at Twilio: reconcile's Messaging
# Service pass would queue a re-sync, which refers to v's row
my $svc = twilio_api($emu, 'POST', '/v1/Services', { FriendlyName => 'elsewhere' })->{body}{sid};
is($node->safe_psql('postgres', "SELECT messaging_service_sid FROM twilio_numbers.numbers_messaging_assign($a, "
		  . "(SELECT phone_number FROM twilio_numbers.owned_numbers WHERE number_id = $n{u}{id}), '$svc')"),
	$svc, 'number u put into it from SQL (so reconcile compares the services)');
is(twilio_api($emu, 'POST', "/v1/Services/$svc/PhoneNumbers", { PhoneNumberSid => $n{v}{sid} })->{status}, 201,
	'number v put into it at Twilio, behind our back');

my $app = $node->background_psql('postgres', on_error_stop => 0);
$app->query_safe('BEGIN');
$app->query_safe("SELECT 1 FROM twilio_numbers.owned_numbers WHERE number_id IN ($n{x}{id}, $n{z}{id}, $n{v}{id}) FOR UPDATE");
$app->query_safe("SELECT 1 FROM twilio_numbers.accounts WHERE account_id = $c FOR UPDATE");

my $found = "SELECT string_agg(finding || ' ' || number_id, ', ' ORDER BY number_id) FROM twilio_numbers.numbers_reconcile()";
# (statement_timeout: a pass that waited would fail here rather than hang)
is($node->safe_psql('postgres', "SET statement_timeout = '120s'; $found"), "vanished_at_twilio $n{y}{id}",
	'a pass while an application holds x, z, v and w\'s account reconciles y and does not wait');
is($node->safe_psql('postgres',
		"SELECT string_agg(status, ',' ORDER BY number_id) FROM twilio_numbers.owned_numbers "
		  . "WHERE number_id IN ($n{x}{id}, $n{y}{id}, $n{z}{id}, $n{w}{id})"),
	'active,released,active,active', 'x, z and w are left as they were, for the next pass');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM twilio_numbers.work_queue WHERE kind IN ('resync', 'messaging_resync') "
		  . "AND number_id IN ($n{z}{id}, $n{v}{id})"),
	'0', 'no re-sync of z or v queued yet');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%FOR UPDATE%'"),
	'1', 'all while the application transaction stayed open');

$app->query_safe('COMMIT');
$app->quit;
is($node->safe_psql('postgres', "SET statement_timeout = '120s'; $found"),
	"vanished_at_twilio $n{x}{id}, config_drift $n{z}{id}, config_drift $n{v}{id}, vanished_at_twilio $n{w}{id}",
	'once it committed, the next pass comes back for them');
ok(wait_queue_drained($node), 'the re-sync of z ran');
is(twilio_api($emu, 'GET', "$numbers/$n{z}{sid}.json")->{body}{friendly_name},
	$node->safe_psql('postgres', "SELECT friendly_name FROM twilio_numbers.owned_numbers WHERE number_id = $n{z}{id}"),
	'z is back in step at Twilio');
is(scalar(grep { $_->{sid} eq $n{v}{sid} }
		@{ twilio_api($emu, 'GET', "/v1/Services/$svc/PhoneNumbers")->{body}{phone_numbers} // [] }),
	0, 'v is out of the service again, as its row says');
is($node->safe_psql('postgres', "SET statement_timeout = '120s'; SELECT count(*) FROM twilio_numbers.numbers_reconcile()"),
	'0', 'and a last pass finds nothing');

$node->stop;
done_testing();
