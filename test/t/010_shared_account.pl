# A Twilio account shared with the world: numbers the extension did not buy
# survive the install, the worker's start-up pass, manual reconciles and
# crash restarts, and are reported once; a second database on the same
# account never releases the first's numbers; only a DBA maps Twilio
# accounts; the extension's own leftovers are still compensated, a killed
# backend's in-flight purchase included, and one account that cannot be
# listed does not stop the others.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TwilioNumbersTest;

my $emu = start_emulator();

# the reseller's own numbers, bought at Twilio before the extension exists
my %theirs = (
	'+13125550150' => buy_elsewhere($emu, '+13125550150', FriendlyName => 'Our office main line'),
	'+13125550151' => buy_elsewhere($emu, '+13125550151', VoiceUrl => 'https://pbx.reseller.example/in'));
my @conf = ("twilio_numbers.worker_interval_ms = 100", "twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.timeout_ms = 2000", "restart_after_crash = on");
my $node = new_node('shared', $emu, @conf);
my $reconciled = 'last_reconcile_at IS NOT NULL';
$node->poll_query_until('postgres', "SELECT $reconciled FROM twilio_numbers.worker_status")
  or die 'no start-up reconcile';
ok(wait_queue_drained($node), 'the start-up pass is over');

# what Twilio holds that the extension did not buy, with its configuration
sub theirs_intact
{
	my ($what) = @_;
	my %at = map { $_->{sid} => $_ } @{ emu($emu, 'GET', '/_emulator/state')->{numbers} };
	my @missing = grep { !$at{ $theirs{$_} } } sort keys %theirs;
	is(join(',', @missing), '', "$what: every number bought elsewhere is still at Twilio");
}
sub deletes_of_theirs
{
	my %sids = map { $_ => 1 } values %theirs;
	return scalar grep { $_->{path} =~ m{/IncomingPhoneNumbers/(PN\w+)\.json$} && $sids{$1} }
	  @{ emu_requests($emu, 'DELETE') }, @{ emu_requests($emu, 'POST') };
}

theirs_intact('after CREATE EXTENSION and the start-up pass');
is($node->safe_psql('postgres',
	"SELECT string_agg(finding || ' ' || phone_number, ', ' ORDER BY phone_number) FROM twilio_numbers.drift"),
	'unmanaged_at_twilio +13125550150, unmanaged_at_twilio +13125550151', 'and reported, once each');
is($node->safe_psql('postgres',
	"SELECT string_agg(phone_number || ' ' || coalesce(friendly_name, ''), ', ' ORDER BY phone_number) "
	  . "FROM twilio_numbers.unmanaged_numbers"),
	'+13125550150 Our office main line, +13125550151 (312) 555-0151', 'a DBA sees them in unmanaged_numbers');
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()'), '0',
	'a manual reconcile finds nothing new');
theirs_intact('after a manual reconcile');

# ---- NOTIFY once, when a number bought elsewhere is first seen ----
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN twilio_numbers_unmanaged');
$theirs{'+13125550152'} = buy_elsewhere($emu, '+13125550152');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
my $heard = $listener->query_safe('SELECT 1');
my @notes = $heard =~ /(Asynchronous notification "twilio_numbers_unmanaged" with payload "[^\n]*")/g;
is(scalar @notes, 1, 'two reconciles, one NOTIFY');
like($notes[0] // '', qr/\+13125550152/, 'naming the number bought later');
$listener->quit;

# ---- our own leftovers are still ours: a rolled-back purchase ----
my $acct = new_account($node, 'Customer', 100);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct, '+13125550160')");
$node->safe_psql('postgres',
	"BEGIN; SELECT twilio_numbers.numbers_purchase($acct, '+13125550161'); ROLLBACK;");
ok(wait_queue_drained($node), 'the rollback is settled');
unlike(emu_owned($emu), qr/\+13125550161/, 'our rolled-back purchase is compensated');
theirs_intact('after a compensation');

# ---- kill -9 of a backend while its purchase POST is in flight ----
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 1500);
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->{stdin} .= "SELECT twilio_numbers.numbers_purchase($acct, '+13125550162');\n";
$session->{run}->pump_nb();
ok($node->poll_query_until('postgres',
	"SELECT posted FROM twilio_numbers.inflight WHERE phone_number = '+13125550162'"),
	'the purchase POST is on its way (its attempt committed first)');
usleep(300_000);
my $w = worker_pid($node);
kill 'KILL', $pid;
wait_restarted($node, $w, $reconciled);
ok($node->poll_query_until('postgres',
	"SELECT outcome = 'compensated' FROM twilio_numbers.purchase_attempts WHERE phone_number = '+13125550162'"),
	'after the restart, the attempt is settled: what it bought is released');
unlike(emu_owned($emu), qr/\+13125550162/, 'the number the killed purchase bought is gone from Twilio');
theirs_intact('after a crash restart');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.drift WHERE finding = 'unmanaged_at_twilio'"), '3',
	'nothing bought elsewhere is reported twice across the crash');
eval { $session->quit };

# ---- a second database on the same Twilio account ----
my $second = new_node('second', $emu, @conf);
$second->poll_query_until('postgres', "SELECT $reconciled FROM twilio_numbers.worker_status")
  or die 'no start-up reconcile on the second cluster';
my $acct2 = new_account($second, 'Second app customer', 100);
$second->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct2, '+13125550170')");
$second->safe_psql('postgres',
	"BEGIN; SELECT twilio_numbers.numbers_purchase($acct2, '+13125550171'); ROLLBACK;");
ok(wait_queue_drained($second), 'the second cluster settles its own rollback');
unlike(emu_owned($emu), qr/\+13125550171/, 'and compensates it');
$second->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
ok(wait_queue_drained($second) && wait_queue_drained($node), 'both reconciled');
like(emu_owned($emu), qr/\+13125550160/, "the first cluster's number survives the second's reconcile");
like(emu_owned($emu), qr/\+13125550170/, "the second's survives the first's");
is($second->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.unmanaged_numbers WHERE phone_number = '+13125550160'"), '1',
	'each reports the other one\'s numbers as unmanaged');
theirs_intact('after two databases reconciled');
is(deletes_of_theirs(), 0, 'no DELETE or change was ever sent for a number bought elsewhere');
$second->stop;

# ---- which Twilio accounts are managed is the DBA's decision ----
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN; SELECT twilio_numbers.grant_application(\'app\')');
my $sub = twilio_api($emu, 'POST', '/2010-04-01/Accounts.json', { FriendlyName => 'Branch' })->{body}{sid};
for my $try (
	[ "INSERT INTO twilio_numbers.accounts (name, twilio_account_sid) VALUES ('Mapped', '$sub')", 'insert a mapped account' ],
	[ "UPDATE twilio_numbers.accounts SET twilio_account_sid = '$sub' WHERE account_id = $acct", 'change a mapping' ],
	[ "SELECT twilio_numbers.numbers_map_account($acct, '$sub')", 'call numbers_map_account' ])
{
	my ($rc, undef, $err) = $node->psql('postgres', $try->[0], extra_params => [ '-U', 'app' ]);
	like($err, qr/permission denied/, "an application role cannot $try->[1]");
}
my (undef, undef, $err) = $node->psql('postgres',
	"SELECT twilio_numbers.numbers_map_account($acct, 'AC0000000000000000000000000000dead')");
like($err, qr/is not this Twilio account or one of its subaccounts/, 'a SID Twilio does not know is refused');
is($node->safe_psql('postgres', "SELECT twilio_account_sid FROM twilio_numbers.accounts WHERE account_id = $acct"),
	'', 'and nothing was mapped');
is($node->safe_psql('postgres',
	"SELECT twilio_account_sid FROM twilio_numbers.numbers_map_account($acct, '$sub')"), $sub,
	'a DBA maps a real subaccount');
$theirs{'+13125550153'} = buy_elsewhere($emu, '+13125550153', account => $sub);

# ---- an account that cannot be listed does not stop the others ----
emu_fault($emu, method => 'GET', path => "Accounts/$sub/IncomingPhoneNumbers\\.json", action => 'status',
	status => 500, times => 0);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_map_account($acct, NULL)");
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_map_account(" . new_account($node, 'Branch', 10) . ", '$sub')");
$session = $node->background_psql('postgres', on_error_stop => 0);
$pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe('BEGIN');
$session->query_safe("SELECT twilio_numbers.numbers_purchase($acct, '+13125550163')");
$w = worker_pid($node);
kill 'KILL', $pid;
wait_restarted($node, $w, $reconciled);
ok(wait_queue_drained($node), 'the restart settles what the killed transaction bought');
unlike(emu_owned($emu), qr/\+13125550163/, 'though one managed account could not be listed');
like($node->safe_psql('postgres',
	"SELECT string_agg(detail->>'account_sid', ',') FROM twilio_numbers.drift WHERE finding = 'account_unreachable'"),
	qr/\Q$sub\E/, 'that account is reported unreachable');
theirs_intact('in the end');
is(money_conserved($node), 't', 'money conserved');
eval { $session->quit };

$node->stop;
done_testing();
