# The queue runners: a release of 300 numbers in one transaction drains with
# several requests in flight (never more than max_concurrent_requests, by the
# emulator's request log); a purchase rolled back during that drain, during
# a reconcile with a slow listing and during a billing pass is compensated
# long before they end (urgent first; passes never hold the queue); with a
# concurrency-limited emulator (limit below the setting) Twilio answers 429s
# and every job still completes, no POST reaching Twilio twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('runners', $emu,
	"max_connections = 40",
	"max_worker_processes = 16",
	"twilio_numbers.max_concurrent_requests = 4",
	"twilio_numbers.queue_workers = 6",
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 1000",
	# a concurrency-limited Twilio answers 429s: more retries than the default 3
	"twilio_numbers.max_retries = 10");
$node->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.queue_runners'), '6',
	'six queue runners run');
my $leaving = new_account($node, 'Leaving', 2000);
my $other = new_account($node, 'Other', 100);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");

# 300 numbers bought in six transactions of 50 (no latency yet)
for my $area (qw(212 213 310))
{
	for my $half (0, 1)
	{
		$node->safe_psql('postgres',
			"SELECT count(*) FROM twilio_numbers.numbers_purchase($leaving, "
			  . "ARRAY(SELECT '+1${area}5550' || lpad((100 + 50 * $half + i)::text, 3, '0') "
			  . "FROM generate_series(0, 49) i))");
	}
}
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE account_id = $leaving AND status = 'active'"),
	'300', 'the customer holds 300 numbers');

# A purchase by another customer, rolled back now; returns its phone number,
# the ms from the rollback to its compensation's end, and that end.
my $next_phone = 150;
sub rolled_back_purchase
{
	my $phone = '+1312555' . sprintf('%04d', $next_phone++);
	my $rolled_back_at = $node->safe_psql('postgres',
		"BEGIN; SELECT twilio_numbers.numbers_purchase($other, '$phone') \\g /dev/null\n"
		  . "ROLLBACK; SELECT clock_timestamp();");
	$node->poll_query_until('postgres',
		"SELECT EXISTS (SELECT 1 FROM twilio_numbers.work_queue WHERE kind = 'compensate' "
		  . "AND phone_number = '$phone' AND status = 'done')")
	  or die "no compensation of $phone";
	return (
		$phone,
		split /\|/, $node->safe_psql('postgres',
			"SELECT round(extract(epoch FROM finished_at - '$rolled_back_at'::timestamptz) * 1000), "
			  . "finished_at FROM twilio_numbers.work_queue WHERE kind = 'compensate' AND phone_number = '$phone'"));
}

# ---- 1. the drain: 300 releases in one transaction, Twilio slow ----
emu($emu, 'DELETE', '/_emulator/requests');
emu($emu, 'POST', '/_emulator/limits', { reset_max => JSON::PP::true });
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'latency', ms => 100, times => 0);
$node->safe_psql('postgres',
	"SELECT count(twilio_numbers.numbers_release($leaving, phone_number)) FROM twilio_numbers.owned_numbers "
	  . "WHERE account_id = $leaving AND status = 'active'");
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 20 FROM twilio_numbers.work_queue WHERE kind = 'release' AND status = 'done'"),
	'the drain is under way');
my ($phone, $ms, $done_at) = rolled_back_purchase();
my $left = $node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.work_queue WHERE kind = 'release' AND (status = 'pending' "
	  . "OR finished_at > '$done_at')");
note "compensation during the drain: $ms ms after the rollback, $left releases still to do";
cmp_ok($left, '>', 50, 'the compensation went before the releases queued ahead of it');
cmp_ok($ms, '<', 5000, 'compensated within seconds of the rollback (the issue asks 2 s)');
ok(wait_queue_drained($node), 'the drain ends');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE account_id = $leaving AND status = 'released'"),
	'300', 'every number was released');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
my $deletes = emu_requests($emu, 'DELETE');
my $overlap = max_overlap($deletes);
note scalar(@$deletes) . " DELETEs, at most $overlap in flight at once";
# (the request log's overlap is a lower bound: its start times are the
# emulator's wall clock, its durations monotonic; the emulator's own count of
# every request of the cluster in flight is exact)
cmp_ok($overlap, '>=', 4, 'the drain filled the budget: 4 requests in flight at once');
my $at_twilio = emu($emu, 'GET', '/_emulator/limits')->{max_in_flight};
cmp_ok($at_twilio, '<=', 4, "never more than max_concurrent_requests at Twilio, every request of the cluster counted ($at_twilio)");
# one job per number: no two requests of one number in flight together
my %by_number;
push @{ $by_number{ $_->{path} =~ m{IncomingPhoneNumbers/(PN\w+)} ? $1 : $_->{path} } }, $_ for @$deletes;
is(scalar(grep { max_overlap($_) > 1 } values %by_number), 0, 'never two requests of one number at once');
emu($emu, 'DELETE', '/_emulator/faults');

# ---- 2. during a reconcile with a slow listing ----
emu_fault($emu, method => 'GET', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 4000,
	times => 1);
my $before = $node->safe_psql('postgres', 'SELECT last_reconcile_at FROM twilio_numbers.worker_status');
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.reconcile_interval_s = 1');
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT activity LIKE 'twilio_numbers: reconciling%' FROM twilio_numbers.worker_status"),
	'the worker is reconciling (its listing takes 4 s)');
($phone, $ms, $done_at) = rolled_back_purchase();
note "compensation during the reconcile: $ms ms after the rollback";
is($node->safe_psql('postgres',
	"SELECT last_reconcile_at IS NOT DISTINCT FROM '$before' OR last_reconcile_at > '$done_at' "
	  . "FROM twilio_numbers.worker_status"), 't', 'compensated before the reconcile ended');
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.reconcile_interval_s = 3600');
$node->reload;
ok(wait_queue_drained($node), 'settled');

# ---- 3. a concurrency-limited Twilio: limit 2, the budget 4 ----
$node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.numbers_purchase($leaving, "
	  . "ARRAY(SELECT '+1415555' || lpad((100 + i)::text, 4, '0') FROM generate_series(0, 39) i))");
emu($emu, 'DELETE', '/_emulator/requests');
emu($emu, 'POST', '/_emulator/limits', { concurrent_requests => 2 });
emu_fault($emu, path => '.', action => 'latency', ms => 100, times => 0);
$node->safe_psql('postgres',
	"SELECT count(twilio_numbers.numbers_release($leaving, phone_number)) FROM twilio_numbers.owned_numbers "
	  . "WHERE account_id = $leaving AND status = 'active'");
# purchases by other sessions meanwhile, two of them rolled back
my $dir = PostgreSQL::Test::Utils::tempdir();
open my $f, '>', "$dir/buy.sql" or die;
print $f "BEGIN;\n"
  . "SELECT twilio_numbers.numbers_purchase($other, '+1503555' || lpad((100 + :client_id)::text, 4, '0'));\n"
  . "\\if :client_id < 2\nROLLBACK;\n\\else\nCOMMIT;\n\\endif\n";
close $f;
$node->command_ok([ 'pgbench', '-n', '-c', '6', '-j', '2', '-t', '1', '-f', "$dir/buy.sql", 'postgres' ],
	'six purchases while the releases drain (two rolled back)');
ok(wait_queue_drained($node), 'every job completed');
emu($emu, 'DELETE', '/_emulator/faults');
emu($emu, 'POST', '/_emulator/limits', { concurrent_requests => 0 });
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.work_queue WHERE status <> 'done'"), '0',
	'no dead letters, nothing pending');
my $log = emu_requests($emu);
my @limited = grep { ($_->{status} // 0) == 429 && ($_->{twilio_code} // 0) == 20429 } @$log;
note scalar(@limited) . ' requests of ' . scalar(@$log) . ' were refused 429 (20429) for the limit';
cmp_ok(scalar(@limited), '>', 0, 'Twilio refused requests beyond its limit');
my ($throttled, $eff) = split /\|/, $node->safe_psql('postgres',
	'SELECT throttled, effective FROM twilio_numbers.request_budget');
cmp_ok($throttled, '>', 0, "the budget heard the 429s ($throttled)");
my %posts;
$posts{ $_->{form}{PhoneNumber} // '' }++
  for grep { $_->{method} eq 'POST' && $_->{path} =~ /IncomingPhoneNumbers\.json$/ && ($_->{status} // 0) != 429 }
  @$log;
is(join(',', grep { $posts{$_} > 1 } sort keys %posts), '', 'no purchase POST reached Twilio twice');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE account_id = $other AND status = 'active'"),
	'4', 'the four committed purchases hold their numbers');

# ---- 4. during a billing pass over many due numbers ----
# 300 accounts x 100 synthetic numbers six months behind (Twilio does not
# hold them: no more reconcile), billed by the worker's next pass
$node->safe_psql('postgres', q{
INSERT INTO twilio_numbers.accounts (name) SELECT 'bulk ' || i FROM generate_series(1, 300) i;
SELECT count(twilio_numbers.numbers_deposit(account_id, 1000)) FROM twilio_numbers.accounts
WHERE name LIKE 'bulk %';
INSERT INTO twilio_numbers.owned_numbers
    (account_id, phone_number, twilio_sid, status, number_type, iso_country, monthly_price, currency,
     billing_anchor_day, period_start, next_billing_at)
SELECT a.account_id, '+1999' || lpad((a.account_id * 100 + n)::text, 7, '0'),
       'PN' || md5(a.account_id || '-' || n), 'active', 'local', 'US', 1.00, 'USD',
       extract(day FROM d0)::int, d0,
       twilio_numbers.period_end(d0, extract(day FROM d0)::int)::timestamp AT TIME ZONE 'UTC'
FROM twilio_numbers.accounts a, generate_series(1, 100) n,
     (SELECT ((now() AT TIME ZONE 'UTC')::date - interval '6 months' - interval '1 day')::date AS d0) x
WHERE a.name LIKE 'bulk %';
ALTER SYSTEM SET twilio_numbers.reconcile_interval_s = -1;
ALTER SYSTEM SET twilio_numbers.billing_batch_size = 300;
ALTER SYSTEM SET twilio_numbers.billing_interval_s = 1;
});
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT activity LIKE 'twilio_numbers: billing batch%' FROM twilio_numbers.worker_status"),
	'the worker is in the middle of a billing pass');
my $run = $node->safe_psql('postgres', "SELECT max(run_id) FROM twilio_numbers.billing_runs WHERE status = 'running'");
($phone, $ms, $done_at) = rolled_back_purchase();
my $progress = $node->safe_psql('postgres',
	"SELECT batches_done || '/' || batches_total FROM twilio_numbers.billing_runs WHERE run_id = $run");
note "compensation during the billing pass: $ms ms after the rollback (the pass at batch $progress)";
is($node->safe_psql('postgres',
	"SELECT finished_at IS NULL OR finished_at > '$done_at' FROM twilio_numbers.billing_runs WHERE run_id = $run"),
	't', 'compensated while the billing pass was still running');
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.billing_interval_s = 3600');
$node->reload;
ok($node->poll_query_until('postgres', "SELECT status <> 'running' FROM twilio_numbers.billing_runs WHERE run_id = $run"),
	'the billing pass ends');
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.integrity'), '0', 'no invariant broken');

$node->stop;
done_testing();
