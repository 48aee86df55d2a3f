# An attempt lives until no request of it can land.  With timeout_ms (2 s)
# below a POST's latency at Twilio (15 s, the purchase applied after the
# delay): the first POST times out, the look-up finds nothing, the second
# POST buys, the transaction rolls back and the compensation releases what
# the second bought — then the first lands and buys the number again.  The
# compensation watched for it (until the attempt's deadline): it is released
# too, within seconds, and the attempt records two resources.  Then: a
# number of ours moved away by another system (reconcile marks it vanished)
# and moved back is reported, adoptable, and never touched again.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('late', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 500",
	"twilio_numbers.timeout_ms = 2000");
my $acct = new_account($node, 'Late', 100);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");
my $main = $ENV{TN_ACCOUNT_SID};

# ---- a POST that lands after its transaction rolled back ----
my $phone = '+15035550170';
emu($emu, 'DELETE', '/_emulator/requests');
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 15000,
	times => 1);
my ($rc, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT status FROM twilio_numbers.numbers_purchase($acct, '$phone'); ROLLBACK;");
is($out, 'active', 'the second POST bought the number (the first timed out, the look-up found nothing)')
  or diag($err);
my $posts = sub {
	[ grep { ($_->{form}{PhoneNumber} // '') eq $phone } @{ emu_requests($emu, 'POST', qr{/IncomingPhoneNumbers\.json$}) } ];
};
is(scalar @{ $posts->() }, 2, 'two POSTs were sent');
ok($node->poll_query_until('postgres',
	"SELECT resources_made = 1 AND state = 'open' FROM twilio_numbers.purchase_attempts WHERE phone_number = '$phone'"),
	'the rollback released what the second POST bought; the attempt stays open (its first POST may land)');
unlike(emu_owned($emu), qr/\Q$phone\E/, 'Twilio does not hold the number meanwhile');
ok(wait_queue_drained($node), 'the queue is drained of work (the undo only watches)');
is($node->safe_psql('postgres',
	"SELECT payload ? 'watching_until' FROM twilio_numbers.work_queue WHERE kind = 'compensate' AND phone_number = '$phone' AND status = 'pending'"),
	't', 'the undo says it watches, and until when');

# the first POST lands (about 15 s after it was sent) and buys the number again
wait_until(sub { grep { defined $_->{status} && $_->{status} == 201 } @{ $posts->() } and
	  (grep { defined $_->{status} } @{ $posts->() }) == 2 }, 'the late POST to land');
my $landed = time();
ok($node->poll_query_until('postgres',
	"SELECT outcome = 'compensated' AND resources_made = 2 FROM twilio_numbers.purchase_attempts WHERE phone_number = '$phone'"),
	'the late creation is compensated too: the attempt records two resources');
note(sprintf('released %.1f s after the late POST landed', time() - $landed));
unlike(emu_owned($emu), qr/\Q$phone\E/, 'Twilio does not hold the number');
my @deletes = grep { $_->{status} == 204 } @{ emu_requests($emu, 'DELETE', qr{/IncomingPhoneNumbers/PN}) };
is(scalar @deletes, 2, 'two DELETEs: one per resource');
my $sids = $node->safe_psql('postgres',
	"SELECT array_to_string(created_sids, ' ') FROM twilio_numbers.purchase_attempts WHERE phone_number = '$phone'");
is(join(' ', sort map { $_->{path} =~ m{/(PN\w+)\.json$} } @deletes), join(' ', sort split / /, $sids),
	'the SIDs released are the ones the attempt records');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.drift WHERE phone_number = '$phone'"), '0',
	'nothing reported as not bought here');
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.ledger WHERE account_id = ' . $acct . " AND kind <> 'deposit'"),
	'0', 'nothing charged');

# ---- the same late POST after a purchase that committed and was released at once ----
my $kept = '+15035550172';
emu($emu, 'DELETE', '/_emulator/requests');
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 15000,
	times => 1);
is($node->safe_psql('postgres', "SELECT status FROM twilio_numbers.numbers_purchase($acct, '$kept')"), 'active',
	'committed: bought by the second POST');
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '$kept')");
ok($node->poll_query_until('postgres',
	"SELECT status = 'released' FROM twilio_numbers.owned_numbers WHERE phone_number = '$kept'"),
	'committed: released at once, before the first POST lands');
my $kept_posts = sub {
	[ grep { ($_->{form}{PhoneNumber} // '') eq $kept } @{ emu_requests($emu, 'POST', qr{/IncomingPhoneNumbers\.json$}) } ];
};
wait_until(sub { (grep { defined $_->{status} && $_->{status} == 201 } @{ $kept_posts->() }) == 2 },
	'the late POST to land');
ok($node->poll_query_until('postgres',
	"SELECT outcome = 'committed' AND resources_made = 2 FROM twilio_numbers.purchase_attempts WHERE phone_number = '$kept'"),
	'committed: what the late POST bought is released too; the attempt is committed and records two')
  or diag($node->safe_psql('postgres',
	"SELECT a::text FROM twilio_numbers.purchase_attempts a WHERE phone_number = '$kept' "
	  . "UNION ALL SELECT q::text FROM twilio_numbers.work_queue q WHERE phone_number = '$kept'"));
unlike(emu_owned($emu), qr/\Q$kept\E/, 'committed: Twilio does not hold the number');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.drift WHERE phone_number = '$kept'"), '0',
	'committed: nothing reported as not bought here');

# ---- let go means let go: moved away by another system, then back ----
my $away = '+15035550171';
my $sid = $node->safe_psql('postgres',
	"SELECT twilio_sid FROM twilio_numbers.numbers_purchase($acct, '$away', friendly_name => 'Our line')");
my $sub = twilio_api($emu, 'POST', '/2010-04-01/Accounts.json', { FriendlyName => 'Not managed here' })->{body}{sid};
my $moved = twilio_api($emu, 'POST', "/2010-04-01/Accounts/$main/IncomingPhoneNumbers/$sid.json", { AccountSid => $sub });
is($moved->{status}, 200, 'another system moves our number into a subaccount we do not manage');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
is($node->safe_psql('postgres', "SELECT status FROM twilio_numbers.owned_numbers WHERE twilio_sid = '$sid'"),
	'released', 'reconcile marks it vanished');
my $back = twilio_api($emu, 'POST', "/2010-04-01/Accounts/$sub/IncomingPhoneNumbers/$sid.json",
	{ AccountSid => $main, FriendlyName => 'Our line' });
is($back->{status}, 200, 'and moves it back, with the friendly name it had here');
emu($emu, 'DELETE', '/_emulator/requests');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
ok(wait_queue_drained($node), 'the queue is drained');
is($node->safe_psql('postgres',
	"SELECT string_agg(finding || ': ' || action, ' | ' ORDER BY drift_id) FROM twilio_numbers.drift "
	  . "WHERE twilio_sid = '$sid' AND finding <> 'vanished_at_twilio'"),
	'unmanaged_at_twilio: none: let go here (vanished or released) and back at Twilio; reported, never touched; adoptable',
	'two reconciles: reported once, as let go');
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.unmanaged_numbers WHERE twilio_sid = '$sid'"),
	'1', 'listed among the unmanaged numbers (adoptable)');
is(scalar @{ emu_requests($emu, 'DELETE') } + scalar @{ emu_requests($emu, 'POST') }, 0,
	'nothing sent to Twilio that releases, moves or changes it');
like(emu_owned($emu), qr/\Q$away\E/, 'Twilio still holds it');
my $adopted = $node->safe_psql('postgres',
	"SELECT status FROM twilio_numbers.numbers_adopt(account_id => $acct, phone_number => '$away')");
is($adopted, 'active', 'a DBA may adopt it again');
is(money_conserved($node), 't', 'money conserved');

$node->stop;
done_testing();
