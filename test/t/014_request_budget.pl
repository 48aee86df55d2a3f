# The cluster's request budget: with max_concurrent_requests = 4, sixteen
# sessions buying at once never have more than 4 requests in flight at
# Twilio (the emulator's request log and its own count say so), every
# purchase completes; a session waiting for a slot shows it in
# pg_stat_activity, and statement_timeout or pg_cancel_backend ends the wait
# without anything sent; a 429 shrinks the budget the whole cluster uses.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('budget', $emu,
	"max_connections = 40",
	"twilio_numbers.max_concurrent_requests = 4",
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 1000");
$node->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';
my $acct = new_account($node, 'Sixteen', 200);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");
is($node->safe_psql('postgres', 'SELECT max_concurrent_requests, effective FROM twilio_numbers.request_budget'),
	'4|4', 'the budget is the setting');

# ---- sixteen purchases at once, every request held 300 ms by Twilio ----
emu($emu, 'DELETE', '/_emulator/requests');
emu($emu, 'POST', '/_emulator/limits', { reset_max => JSON::PP::true });
emu_fault($emu, path => '.', action => 'latency', ms => 300, times => 0);
my $dir = PostgreSQL::Test::Utils::tempdir();
open my $f, '>', "$dir/buy.sql" or die;
print $f "SELECT twilio_numbers.numbers_purchase($acct, '+1512555' || lpad((100 + :client_id)::text, 4, '0'));\n";
close $f;
my $t0 = time();
$node->command_ok([ 'pgbench', '-n', '-c', '16', '-j', '4', '-t', '1', '-f', "$dir/buy.sql", 'postgres' ],
	'16 sessions bought one number each, at the same time');
note sprintf('16 purchases took %.1f s', time() - $t0);
emu($emu, 'DELETE', '/_emulator/faults');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE account_id = $acct AND status = 'active'"),
	'16', 'every purchase completed');
my $log = emu_requests($emu);
cmp_ok(scalar(@$log), '>=', 32, 'each purchase sent its requests (a look-up and a POST)');
my $overlap = max_overlap($log);
# (the request log's overlap is a lower bound only: its start times are the
# emulator's wall clock, its durations monotonic; the emulator's own count of
# requests in flight, below, is exact)
note "most requests in flight at once in the request log: $overlap";
cmp_ok($overlap, '>=', 2, 'requests did run side by side');
my $limits = emu($emu, 'GET', '/_emulator/limits');
cmp_ok($limits->{max_in_flight}, '<=', 4, "the emulator never served more than 4 at once ($limits->{max_in_flight})");
my $budget = $node->safe_psql('postgres', 'SELECT peak_in_flight, waits > 0, in_flight, waiting FROM twilio_numbers.request_budget');
my ($peak, $waited, $in_flight, $waiting) = split /\|/, $budget;
cmp_ok($peak, '<=', 4, "the budget never gave out more than 4 slots ($peak)");
is($waited, 't', 'sessions waited for a slot');
is("$in_flight|$waiting", '0|0', 'every slot was given back, nobody waits');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');

# ---- a session waiting for a slot: seen waiting, ended by statement_timeout ----
# four searches hold every slot for 6 s
emu_fault($emu, method => 'GET', path => 'AvailablePhoneNumbers', action => 'latency', ms => 6000, times => 4);
my @holders;
for my $i (1 .. 4)
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->{stdin} .= "SELECT count(*) FROM twilio_numbers.numbers_search('US', area_code => '212');\n";
	$s->{run}->pump_nb();
	push @holders, $s;
}
ok($node->poll_query_until('postgres', 'SELECT in_flight = 4 FROM twilio_numbers.request_budget'),
	'four searches hold every slot');
emu($emu, 'DELETE', '/_emulator/requests');
my $waiter = $node->background_psql('postgres', on_error_stop => 0);
$waiter->{stdin} .= "SELECT 'waiter', count(*) FROM twilio_numbers.numbers_search('US', area_code => '415');\n";
$waiter->{run}->pump_nb();
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%''waiter''%' AND pid <> pg_backend_pid() "
	  . "AND state = 'active' AND wait_event_type = 'Extension') "
	  . "AND (SELECT waiting FROM twilio_numbers.request_budget) = 1"),
	'a fifth session waits for a slot, and pg_stat_activity shows the wait');
my $waiter_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%''waiter''%' AND pid <> pg_backend_pid()");
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)"), 't', 'pg_cancel_backend the waiter');
ok($node->poll_query_until('postgres', 'SELECT waiting = 0 FROM twilio_numbers.request_budget'),
	'the cancelled session waits no more');

$t0 = time();
my ($rc, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '1s'; SELECT count(*) FROM twilio_numbers.numbers_search('US', area_code => '312')");
my $took = time() - $t0;
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends a wait for a slot');
note sprintf('the timed-out search returned after %.2f s (the slots were held for 6 s)', $took);
cmp_ok($took, '<', 5, 'it did not wait for a slot to come free');
is($node->safe_psql('postgres', 'SELECT in_flight, waiting FROM twilio_numbers.request_budget'), '4|0',
	'the four holders still hold their slots; nobody else holds or waits');
is(scalar(@{ emu_requests($emu) }), 0, 'nothing of the cancelled or timed-out sessions reached Twilio');
$_->quit for @holders;
$waiter->quit;
like($waiter->{stderr}, qr/canceling statement due to user request/, 'the cancelled session was told why');
ok($node->poll_query_until('postgres', 'SELECT in_flight = 0 FROM twilio_numbers.request_budget'),
	'the holders gave their slots back');

# ---- a 429 halves the budget of the whole cluster, which grows back ----
emu_fault($emu, method => 'GET', path => 'AvailablePhoneNumbers', action => 'status', status => 429, times => 1);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', area_code => '617')");
my ($eff, $throttled) = split /\|/, $node->safe_psql('postgres',
	'SELECT effective, throttled FROM twilio_numbers.request_budget');
cmp_ok($eff, '<', 4, "a 429 lowered the budget the cluster uses (to $eff)");
is($throttled, '1', 'the 429 is counted');
ok(wait_until(sub {
			$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', area_code => '206')");
			$node->safe_psql('postgres', 'SELECT effective FROM twilio_numbers.request_budget') eq '4';
		}, 'the budget to grow back'),
	'answered requests let it grow back to the setting');

# ---- an array purchase sends its POSTs at once, each by the once-only protocol ----
my $arr = new_account($node, 'Array', 200);
sub phones { my ($from, $n) = @_; return map { sprintf('+1646555%04d', $_) } $from .. $from + $n - 1 }
sub array_sql { return 'ARRAY[' . join(',', map { "'$_'" } @_) . ']' }
sub balance { return $node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $arr") }
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 300, times => 0);

my @eight = phones(100, 8);
emu($emu, 'DELETE', '/_emulator/requests');
emu($emu, 'POST', '/_emulator/limits', { reset_max => JSON::PP::true });
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_purchase($arr, " . array_sql(@eight) . ')'),
	'8', 'an array purchase of 8 numbers');
my @posts = @{ emu_requests($emu, 'POST', qr/IncomingPhoneNumbers\.json$/) };
is(scalar(@posts), 8, 'one POST per number');
my $post_overlap = max_overlap(\@posts);
note "most of its POSTs in flight at once: $post_overlap";
cmp_ok($post_overlap, '>=', 2, 'its POSTs overlapped');
my $array_at_twilio = emu($emu, 'GET', '/_emulator/limits')->{max_in_flight};
cmp_ok($array_at_twilio, '<=', 4, "within max_concurrent_requests at Twilio ($array_at_twilio)");

# one POST refused: all or nothing
my @six = phones(110, 6);
my $before = balance();
emu($emu, 'DELETE', '/_emulator/requests');
emu($emu, 'DELETE', '/_emulator/faults');
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 400,
	code => 21422, times => 1);
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 300, times => 0);
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT count(*) FROM twilio_numbers.numbers_purchase($arr, " . array_sql(@six) . ')');
like($err, qr/TN002|not available/, 'a POST refused (21422) fails the whole purchase');
@posts = @{ emu_requests($emu, 'POST', qr/IncomingPhoneNumbers\.json$/) };
is(scalar(@posts), 6, 'after one POST for each number, sent at once');
cmp_ok(max_overlap(\@posts), '>=', 2, 'overlapping');
ok(wait_queue_drained($node), 'the numbers the others bought are compensated');
is(balance(), $before, 'nothing charged');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers (none of the six)');

# one reply lost: looked up, never sent again blindly
my @five = phones(120, 5);
emu($emu, 'DELETE', '/_emulator/requests');
emu($emu, 'DELETE', '/_emulator/faults');
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_after', times => 1);
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 300, times => 0);
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_purchase($arr, " . array_sql(@five) . ')'),
	'5', 'an array purchase with one reply lost completes (the lost one found by its look-up)');
@posts = @{ emu_requests($emu, 'POST', qr/IncomingPhoneNumbers\.json$/) };
my %per;
$per{ $_->{form}{PhoneNumber} }++ for @posts;
is(join(',', map { $per{$_} // 0 } @five), '1,1,1,1,1', 'exactly one POST per number: none resent blindly');
cmp_ok(scalar(@{ emu_requests($emu, 'GET', qr/IncomingPhoneNumbers\.json$/) }), '>=', 1, 'the lost reply was looked up');
emu($emu, 'DELETE', '/_emulator/faults');
ok(wait_queue_drained($node), 'settled');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.integrity'), '0', 'no invariant broken');

$node->stop;
done_testing();
