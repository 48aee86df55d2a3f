# Hosted number orders and the worker: NOTIFY on each change of status, and
# a kill -9 of the worker between seeing "completed" and writing the owned
# number -> after the restart exactly one owned number, charged once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('hosted', $emu,
	"restart_after_crash = on",
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.hosted_poll_ms = 100",
	"twilio_numbers.hosted_poll_max_ms = 300",
	"twilio_numbers.timeout_ms = 60000");
my $acct = new_account($node, 'Hosting Ltd', 50);

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN twilio_numbers_hosted');

my $order = $node->safe_psql('postgres',
	"SELECT order_sid FROM twilio_numbers.numbers_hosted_order($acct, '+17025559999', 'ops\@example.com', "
	  . "'+17025550000', 'AD00000000000000000000000000000001')");
like($order, qr/^HR[0-9a-f]{32}$/, 'an order is filed');

sub move_and_wait
{
	my ($status) = @_;
	emu($emu, 'POST', "/_emulator/hosted/$order", { status => $status });
	$node->poll_query_until('postgres',
		"SELECT status = '$status' FROM twilio_numbers.hosted_orders WHERE order_sid = '$order'")
	  or die "the worker did not see $status";
}
move_and_wait($_) for ('pending-verification', 'verified', 'pending-loa', 'carrier-processing', 'testing');

# the notifications arrive in the listening session (psql prints them after a query)
my $heard = '';
wait_until(sub {
	$heard .= $listener->query('SELECT 1');
	return $heard =~ /"status" : "testing"/;
}, 'the notifications');
my @statuses = $heard =~ /"status" : "([a-z-]+)"/g;
is(join(',', @statuses), 'received,pending-verification,verified,pending-loa,carrier-processing,testing',
	'one NOTIFY per change of status, in order');
like($heard, qr/"order_sid" : "$order"/, 'each names the order');

# completed: the worker sees it, then hangs fetching the new number -- kill it there
emu_fault($emu, method => 'GET', path => 'IncomingPhoneNumbers/PN', action => 'hang', times => 1);
emu($emu, 'POST', "/_emulator/hosted/$order", { status => 'completed' });
my $polling = "FROM twilio_numbers.queue_runners WHERE activity LIKE 'twilio_numbers: hosted_poll%'";
ok($node->poll_query_until('postgres', "SELECT bool_or(wait_event_type = 'Extension') $polling"),
	'a queue runner saw "completed" and is fetching the hosted number');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE phone_number = '+17025559999'"), '0',
	'nothing is written yet');
my $runner = $node->safe_psql('postgres', "SELECT pid $polling");
my $w = worker_pid($node);
kill 'KILL', $runner;
wait_restarted($node, $w);

ok($node->poll_query_until('postgres',
	"SELECT number_id IS NOT NULL FROM twilio_numbers.hosted_orders WHERE order_sid = '$order'"),
	'after the restart the worker completes the order');
is($node->safe_psql('postgres',
	"SELECT count(*) || ' ' || min(origin) || ' ' || min(status) FROM twilio_numbers.owned_numbers "
	  . "WHERE phone_number = '+17025559999'"), '1 hosted active', 'exactly one owned number, origin hosted');
is($node->safe_psql('postgres',
	"SELECT string_agg(kind, ',' ORDER BY entry_id) FROM twilio_numbers.ledger l "
	  . "JOIN twilio_numbers.owned_numbers o USING (number_id) WHERE o.phone_number = '+17025559999'"),
	'monthly_fee', 'charged its first period once (no hosting setup price in the price list)');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.hosted_order_history WHERE order_sid = '$order' AND status = 'completed'"),
	'1', 'completed once in the history');
is($node->safe_psql('postgres',
	"SELECT n.twilio_sid = o.incoming_phone_number_sid FROM twilio_numbers.hosted_orders o "
	  . "JOIN twilio_numbers.owned_numbers n USING (number_id) WHERE o.order_sid = '$order'"),
	't', 'the row is the IncomingPhoneNumber Twilio created');
is(money_conserved($node), 't', 'balance = ledger sum');

$listener->quit;
$node->stop;
done_testing();
