# Messaging Service assignment with trunk assignment's guarantees: after a
# rollback, a savepoint, a lost reply (looked up, or not found out), a
# backend killed mid-assignment and the worker killed mid-re-sync, Twilio's
# sender pools hold exactly what the committed rows say.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('messaging', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 1000",
	"twilio_numbers.timeout_ms = 2000",
	"restart_after_crash = on");
my $acct = new_account($node, 'Texty', 100);
my @phones = ('+12065550121', '+12065550122', '+12065550123', '+12065550124');
$node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.numbers_purchase($acct, ARRAY['" . join("','", @phones) . "'])");
my $svc_a = twilio_api($emu, 'POST', '/v1/Services', { FriendlyName => 'Reminders' })->{body}{sid};
my $svc_b = twilio_api($emu, 'POST', '/v1/Services', { FriendlyName => 'Marketing' })->{body}{sid};
like($svc_a, qr/^MG[0-9a-f]{32}$/, 'two Messaging Services at Twilio');
my %name = ($svc_a => 'A', $svc_b => 'B');

# "phone=A;phone=B" as Twilio's pools hold them, and as the live rows say
sub at_twilio
{
	my $state = emu($emu, 'GET', '/_emulator/state');
	my @pairs;
	for my $s (@{ $state->{messaging_services} })
	{
		push @pairs, map { "$_=" . ($name{ $s->{sid} } // $s->{sid}) } @{ $s->{phone_numbers} };
	}
	return join(';', sort @pairs);
}

sub in_rows
{
	my $rows = $node->safe_psql('postgres',
		"SELECT phone_number || '=' || messaging_service_sid FROM twilio_numbers.owned_numbers "
		  . "WHERE status <> 'released' AND messaging_service_sid IS NOT NULL ORDER BY 1");
	my @pairs;
	for my $line (grep { length } split /\n/, $rows)
	{
		my ($phone, $service) = split /=/, $line;
		push @pairs, "$phone=" . ($name{$service} // $service);
	}
	return join(';', sort @pairs);
}

sub agree
{
	my ($what, $expected) = @_;
	ok(wait_queue_drained($node), "$what: the queue drains");
	is(at_twilio(), in_rows(), "$what: Twilio's pools and the rows agree");
	is(in_rows(), $expected, "$what: $expected") if defined $expected;
}

sub assign { "SELECT phone_number FROM twilio_numbers.numbers_messaging_assign($acct, '$_[0]', '$_[1]')" }

# ---- committed ----
$node->safe_psql('postgres', assign($phones[0], $svc_a));
agree('a committed assignment', "$phones[0]=A");

# ---- rolled back: an assignment, an unassignment, a savepoint ----
$node->safe_psql('postgres', 'BEGIN; ' . assign($phones[1], $svc_a) . '; ROLLBACK');
agree('a rolled-back assignment', "$phones[0]=A");
$node->safe_psql('postgres',
	"BEGIN; SELECT twilio_numbers.numbers_messaging_unassign($acct, '$phones[0]'); ROLLBACK");
agree('a rolled-back unassignment', "$phones[0]=A");
$node->safe_psql('postgres',
	'BEGIN; SAVEPOINT s; ' . assign($phones[1], $svc_a) . '; ROLLBACK TO SAVEPOINT s; ' . assign($phones[1], $svc_b)
	  . '; COMMIT');
agree('a savepoint rolled back, then another service committed', "$phones[0]=A;$phones[1]=B");

# ---- lost replies ----
emu($emu, 'DELETE', '/_emulator/requests');
emu_fault($emu, method => 'POST', path => '/v1/Services/MG[^/]+/PhoneNumbers$', action => 'reset_after', times => 1);
is($node->safe_psql('postgres', assign($phones[2], $svc_a)), $phones[2],
	'the reply to the add is lost: the call looks the sender up and succeeds');
is(join(',', map { "$_->{method}:" . ($_->{status} // 'none') } @{ emu_requests($emu, undef, qr{^/v1/Services/}) }),
	'POST:201,GET:200', 'one POST (its reply lost), one look-up');
agree('a lost reply looked up', "$phones[0]=A;$phones[1]=B;$phones[2]=A");

# the reply is lost and the look-up fails too: the call fails, the caller's
# transaction rolls back, and the worker takes the number out again
emu_fault($emu, method => 'POST', path => '/v1/Services/MG[^/]+/PhoneNumbers$', action => 'reset_after', times => 1);
emu_fault($emu, method => 'GET', path => '/v1/Services/MG[^/]+/PhoneNumbers/', action => 'status', status => 503,
	times => 0);
my ($ret, $out, $err) = $node->psql('postgres', assign($phones[3], $svc_a));
like($err, qr/Twilio/, 'the reply lost and the look-up failing: the call fails');
is(scalar(grep { ($_->{fault} // '') eq 'reset_after' && $_->{status} == 201 }
	  @{ emu_requests($emu, 'POST', qr{^/v1/Services/}) }), 2,
	'though the add reached Twilio (its reply lost)');
emu($emu, 'DELETE', '/_emulator/faults');
agree('a lost reply not found out', "$phones[0]=A;$phones[1]=B;$phones[2]=A");
cmp_ok(scalar @{ emu_requests($emu, 'DELETE', qr{^/v1/Services/}) }, '>=', 1, 'the worker took it out again');

# ---- a backend killed with its assignment made at Twilio, before COMMIT ----
my $reconciled = 'last_reconcile_at IS NOT NULL';
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe('BEGIN');
is($session->query_safe(assign($phones[3], $svc_b)), $phones[3], 'an assignment inside an open transaction');
like(at_twilio(), qr/\Q$phones[3]\E=B/, 'Twilio has added it');
my $w = worker_pid($node);
kill 'KILL', $pid;
wait_restarted($node, $w, $reconciled);
agree('a backend killed before COMMIT: the start-up reconcile', "$phones[0]=A;$phones[1]=B;$phones[2]=A");
is($node->safe_psql('postgres',
	"SELECT finding || ': ' || action || ' ' || (detail->>'at_twilio' = '$svc_b') FROM twilio_numbers.drift "
	  . "WHERE phone_number = '$phones[3]'"),
	'config_drift: resync queued true', 'the reconcile recorded where Twilio had it');
eval { $session->quit };

# ---- the queue runner killed while it takes a number out (a rolled-back assignment) ----
emu($emu, 'DELETE', '/_emulator/requests');
emu_fault($emu, method => 'DELETE', path => '/v1/Services/MG[^/]+/PhoneNumbers/', action => 'hang', times => 1);
$node->safe_psql('postgres', 'BEGIN; ' . assign($phones[3], $svc_a) . '; ROLLBACK');
my $resyncing = "FROM twilio_numbers.queue_runners WHERE activity LIKE 'twilio_numbers: messaging_resync%'";
ok($node->poll_query_until('postgres', "SELECT bool_or(wait_event_type = 'Extension') $resyncing"),
	'a queue runner waits on the DELETE');
my $runner = $node->safe_psql('postgres', "SELECT pid $resyncing");
$w = worker_pid($node);
kill 'KILL', $runner;
wait_restarted($node, $w, $reconciled);
agree('the queue runner killed mid-re-sync', "$phones[0]=A;$phones[1]=B;$phones[2]=A");
cmp_ok(scalar @{ emu_requests($emu, 'DELETE', qr{^/v1/Services/}) }, '>=', 2,
	'the DELETE was sent again after the crash');

# ---- changed at Twilio behind our back: reconcile puts it back ----
my $sid0 = $node->safe_psql('postgres',
	"SELECT twilio_sid FROM twilio_numbers.owned_numbers WHERE phone_number = '$phones[0]' AND status = 'active'");
is(twilio_api($emu, 'DELETE', "/v1/Services/$svc_a/PhoneNumbers/$sid0")->{status}, 204,
	'a number of ours is taken out of its service directly at Twilio');
is($node->safe_psql('postgres',
	"SELECT string_agg(finding || ' ' || phone_number || ': ' || action, '; ') FROM twilio_numbers.numbers_reconcile()"),
	"config_drift $phones[0]: resync queued", 'reconcile finds it');
agree('reconcile after a change behind our back', "$phones[0]=A;$phones[1]=B;$phones[2]=A");

# ---- an assignment and a transfer to another subaccount racing for one number ----
# The transfer waits for the row lock the assignment holds; once the assignment
# commits it must see the number in its service and refuse (the service would
# stay behind in this account).  Found by the soak: the transfer read the row
# with the snapshot it took before the lock, moved the number, and the row kept
# a service Twilio no longer had it in.
my $race_sub = twilio_api($emu, 'POST', '/2010-04-01/Accounts.json', { FriendlyName => 'Race' })->{body}{sid};
my $elsewhere = new_account($node, 'Elsewhere', 10);
$node->safe_psql('postgres', "SELECT account_id FROM twilio_numbers.numbers_map_account($elsewhere, '$race_sub')");
my $assigner = $node->background_psql('postgres', on_error_stop => 0);
$assigner->query_safe('BEGIN');
is($assigner->query_safe(assign($phones[3], $svc_a)), $phones[3], 'an assignment holds the number, uncommitted');
my $mover = $node->background_psql('postgres', on_error_stop => 0);
$mover->{stdin} .= "SELECT 'moved', phone_number FROM twilio_numbers.numbers_transfer('$phones[3]', $acct, $elsewhere);\n";
$mover->{run}->pump_nb();
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%''moved''%' AND pid <> pg_backend_pid() "
	  . "AND wait_event_type = 'Lock')"),
	'the transfer waits for the assignment');
$assigner->query_safe('COMMIT');
$assigner->quit;
ok($node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%''moved''%' AND pid <> pg_backend_pid() "
	  . "AND state = 'active')"),
	'the transfer is over');
$mover->quit;
like($mover->{stderr}, qr/is in Messaging Service/, 'the transfer is refused: the number is in a service now');
is($node->safe_psql('postgres',
	"SELECT account_id = $acct FROM twilio_numbers.owned_numbers WHERE phone_number = '$phones[3]' AND status <> 'released'"),
	't', 'the number stayed with its account');
agree('an assignment and a transfer racing', "$phones[0]=A;$phones[1]=B;$phones[2]=A;$phones[3]=A");

is(money_conserved($node), 't', 'money conserved');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
done_testing();
