# Two transactions after one number, with lost replies: a transaction only
# ever keeps a number its own request created.  While one purchase of a
# number is in flight no other may start; a purchase whose reply is lost
# never takes the number another transaction bought (and whose compensation
# is pending); nothing is charged for a number Twilio does not hold for us.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('racing', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 500",
	"twilio_numbers.timeout_ms = 2000");
$node->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';
my $x = new_account($node, 'X', 20);
my $y = new_account($node, 'Y', 20);
my $phone = '+12125550190';

# ---- while X's purchase is in flight, Y cannot start one of the same number ----
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 503,
	times => 1);
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 1500,
	times => 1);
emu($emu, 'DELETE', '/_emulator/requests');
my $xs = $node->background_psql('postgres', on_error_stop => 0);
$xs->{stdin} .= "SELECT phone_number, status FROM twilio_numbers.numbers_purchase($x, '$phone');\n";
$xs->{run}->pump_nb();
ok($node->poll_query_until('postgres',
	"SELECT posted FROM twilio_numbers.inflight WHERE phone_number = '$phone' AND account_id = $x"),
	"X's purchase is on its way (its first POST answered 503, the retry delayed)");
my ($rc, undef, $err) = $node->psql('postgres', "SELECT twilio_numbers.numbers_purchase($y, '$phone')");
like($err, qr/phone number \Q$phone\E is being bought by another transaction/, 'Y is refused at once');
ok($node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.inflight WHERE phone_number = '$phone' AND state = 'in progress')"),
	"X's purchase ends");
$xs->quit;
is($node->safe_psql('postgres',
	"SELECT account_id = $x FROM twilio_numbers.owned_numbers WHERE phone_number = '$phone' AND status = 'active'"),
	't', 'X owns the number it bought');
my @posts = @{ emu_requests($emu, 'POST', qr/IncomingPhoneNumbers\.json$/) };
is(join(' ', map { "$_->{form}{PhoneNumber}:$_->{status}" } @posts), "$phone:503 $phone:201",
	'Twilio saw only X: the 503 and, after the look-up found nothing, the retry');
ok(wait_queue_drained($node), 'settled');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');

# ---- a number another transaction left at Twilio is not for sale ----
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($x, '$phone')");
ok(wait_queue_drained($node), 'released');
my $other = '+12125550191';
my $y_before = $node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $y");
my $x_before = $node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $x");
# Y buys and rolls back; its compensation cannot get through yet
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'status', status => 500, times => 0);
$node->safe_psql('postgres', "BEGIN; SELECT twilio_numbers.numbers_purchase($y, '$other'); ROLLBACK;");
ok($node->poll_query_until('postgres',
	"SELECT last_error IS NOT NULL FROM twilio_numbers.work_queue WHERE kind = 'compensate' AND phone_number = '$other'"),
	"Y's compensation is pending (Twilio keeps failing the DELETE)");
# reconcile finds it while the compensation is in flight: one row for the episode, not one per pass
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()') for 1 .. 3;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.drift WHERE phone_number = '$other' AND finding = 'orphan_at_twilio'"),
	'1', 'three reconciles during the compensation: one drift row');
($rc, undef, $err) = $node->psql('postgres', "SELECT twilio_numbers.numbers_purchase($x, '$other')");
like($err, qr/phone number \Q$other\E is not available/, "X cannot buy what Y's rolled-back purchase left");
emu($emu, 'DELETE', '/_emulator/faults');
ok(wait_queue_drained($node), "Y's compensation goes through");
unlike(emu_owned($emu), qr/\Q$other\E/, 'the number is gone from Twilio');

# ---- a lost reply never takes a number someone else bought meanwhile ----
# X's POST is lost; while X looks the number up, another system buys it
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_before', times => 1);
emu_fault($emu, method => 'GET', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 1000,
	times => 1);
$xs = $node->background_psql('postgres', on_error_stop => 0);
$xs->{stdin} .= "SELECT twilio_numbers.numbers_purchase($x, '$other', friendly_name => 'X main line');\n";
$xs->{run}->pump_nb();
wait_until(sub { grep { ($_->{form}{PhoneNumber} // '') eq $other } @{ emu_requests($emu, 'POST') } },
	"X's lost POST");
my $theirs = buy_elsewhere($emu, $other, FriendlyName => 'Another system');
$xs->query("SELECT 'after'");
$err = $xs->{stderr};
$xs->quit;
like($err, qr/phone number \Q$other\E is held at Twilio by someone else/,
	'X does not take the number the look-up found: it is not configured as X asked');
ok(wait_queue_drained($node), "X's attempt is settled");
ok((grep { $_->{sid} eq $theirs } @{ emu($emu, 'GET', '/_emulator/state')->{numbers} }),
	"the other system's number is untouched");
is($node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $x"), $x_before,
	'X was charged nothing');
is($node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $y"), $y_before,
	'Y was charged nothing');
# X's POST got no reply: it may still land until X's attempt's deadline, so
# the attempt stays open and its undo watches (it has bought nothing so far)
is($node->safe_psql('postgres',
	"SELECT string_agg(coalesce(outcome, state) || ' ' || resources_made, ',' ORDER BY attempt_id) "
	  . "FROM twilio_numbers.purchase_attempts WHERE phone_number = '$other'"),
	'compensated 1,open 0', "Y's attempt compensated what it bought; X's bought nothing so far and stays open");
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.work_queue q JOIN twilio_numbers.purchase_attempts a USING (attempt_id) "
	  . "WHERE a.phone_number = '$other' AND a.state = 'open' AND q.status = 'pending' "
	  . "AND q.payload ? 'watching_until' AND (q.payload->>'watching_until')::timestamptz = a.deadline"),
	'1', "X's undo watches until its attempt's deadline");
is(join(',', grep { $_ ne $other } split /,/, emu_owned($emu)), live_numbers($node),
	'besides the other system\'s number, Twilio holds exactly the live numbers');
is(money_conserved($node), 't', 'money conserved');

$node->stop;
done_testing();
