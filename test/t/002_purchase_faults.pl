# Twilio misbehaving during each step of a purchase, an update and a release:
# lost replies are resolved by looking the number up (never by a blind second
# POST), 429s wait for Retry-After, 5xx and hangs end cleanly, and in every case
# the money and Twilio's state end up right.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('faults', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 500",
	"twilio_numbers.timeout_ms = 2000");
my $acct = new_account($node, 'Faulty', 100);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");

sub clear { emu($emu, 'DELETE', '/_emulator/requests'); emu($emu, 'DELETE', '/_emulator/faults'); }
sub buy
{
	my ($phone, $extra) = @_;
	$extra //= '';
	return $node->psql('postgres',
		"SELECT status FROM twilio_numbers.numbers_purchase($acct, '$phone'$extra)");
}
sub posts_for
{
	my ($phone) = @_;
	return scalar grep { ($_->{form}{PhoneNumber} // '') eq $phone }
	  @{ emu_requests($emu, 'POST', qr{/IncomingPhoneNumbers\.json$}) };
}
sub lookups_for
{
	my ($phone) = @_;
	return scalar grep { ($_->{query}{PhoneNumber} // '') eq $phone }
	  @{ emu_requests($emu, 'GET', qr{/IncomingPhoneNumbers\.json$}) };
}
# look-ups of the number sent before its last POST (after it, the worker may
# watch for a POST that got no reply until its attempt's deadline)
sub lookups_before_last_post
{
	my ($phone) = @_;
	my @posts = grep { ($_->{form}{PhoneNumber} // '') eq $phone }
	  @{ emu_requests($emu, 'POST', qr{/IncomingPhoneNumbers\.json$}) };
	my $last = @posts ? $posts[-1]{seq} : 0;
	return scalar grep { ($_->{query}{PhoneNumber} // '') eq $phone && $_->{seq} < $last }
	  @{ emu_requests($emu, 'GET', qr{/IncomingPhoneNumbers\.json$}) };
}
sub row_status
{
	my ($phone) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(status, ',' ORDER BY number_id) FROM twilio_numbers.owned_numbers WHERE phone_number = '$phone'");
}
sub charges_for
{
	my ($phone) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM twilio_numbers.ledger l JOIN twilio_numbers.owned_numbers o USING (number_id) "
		  . "WHERE o.phone_number = '$phone' AND l.kind IN ('setup_fee', 'monthly_fee')");
}

# ---- the buy: lost reply (the purchase took effect, the reply was lost) ----
clear();
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_after', times => 1);
my ($ret, $out, $err) = buy('+15035550100');
is($out, 'active', 'lost reply on buy: the purchase succeeds');
is(posts_for('+15035550100'), 1, 'lost reply on buy: exactly one POST was sent');
is(lookups_for('+15035550100'), 1, 'lost reply on buy: the number was looked up instead');
is(charges_for('+15035550100'), 1, 'lost reply on buy: charged once');
like(emu_owned($emu), qr/\+15035550100/, 'lost reply on buy: Twilio holds the number');

# ---- the buy: connection reset before the request was applied ----
clear();
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_before', times => 1);
($ret, $out, $err) = buy('+15035550101');
is($out, 'active', 'reset before the buy: the purchase succeeds');
is(posts_for('+15035550101'), 2, 'reset before the buy: the POST was sent again...');
is(lookups_before_last_post('+15035550101'), 1, '...only after a look-up proved the first did not buy it');

# ---- the buy: 503, then success ----
clear();
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 503, times => 1);
($ret, $out, $err) = buy('+15035550102');
is($out, 'active', '503 on the buy: resolved by look-up and a second POST');
is(posts_for('+15035550102'), 2, '503 on the buy: two POSTs');
is(lookups_for('+15035550102'), 1, '503 on the buy: a look-up between them');

# ---- the buy: 503 every time: a clear error, nothing charged, nothing left ----
clear();
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 503, times => 0);
my $before = $node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $acct");
($ret, $out, $err) = buy('+15035550103');
like($err, qr/Twilio failed with HTTP status 503/, '503 every time: the purchase fails with TN005');
is(row_status('+15035550103'), '', '503 every time: no row');
is($node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $acct"),
	$before, '503 every time: no charge');
clear();

# ---- the buy: 429 with Retry-After: waited for, then the same POST ----
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 429,
	retry_after => 1, times => 1);
($ret, $out, $err) = buy('+15035550104');
is($out, 'active', '429 on the buy: retried after Retry-After');
is(posts_for('+15035550104'), 2, '429 on the buy: two POSTs (Twilio did not act on the first)');
is(lookups_for('+15035550104'), 0, '429 on the buy: no look-up needed');

# ---- the buy: Twilio hangs; timeout_ms ends the wait, the look-up resolves it ----
clear();
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'hang', times => 1);
($ret, $out, $err) = buy('+15035550105');
is($out, 'active', 'hang on the buy: the purchase succeeds after timeout, look-up, second POST');
is(lookups_before_last_post('+15035550105'), 1, 'hang on the buy: looked up before the second POST');

# ---- the buy: hang ended by statement_timeout: nothing charged, nothing left ----
clear();
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'hang', times => 1);
($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '1s'; SELECT status FROM twilio_numbers.numbers_purchase($acct, '+15035550106')");
like($err, qr/canceling statement due to statement timeout/, 'hang + statement_timeout: cancelled');
ok(wait_queue_drained($node), 'hang + statement_timeout: the worker settled it');
unlike(emu_owned($emu), qr/\+15035550106/, 'hang + statement_timeout: Twilio does not hold the number');
is(row_status('+15035550106'), '', 'hang + statement_timeout: no row');

# ---- the look-up GET failing with 5xx is simply retried ----
clear();
emu_fault($emu, method => 'GET', path => 'AvailablePhoneNumbers', action => 'status', status => 500, times => 2);
($ret, $out, $err) = buy('+15035550107');
is($out, 'active', '5xx on the inventory look-up: retried, then bought');

# ---- an update whose reply is lost: the statement fails, Twilio is put back ----
clear();
$node->safe_psql('postgres',
	"SELECT twilio_numbers.numbers_update($acct, '+15035550100', friendly_name => 'Before')");
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers/PN', action => 'reset_after', times => 1);
($ret, $out, $err) = $node->psql('postgres',
	"SELECT friendly_name FROM twilio_numbers.numbers_update($acct, '+15035550100', friendly_name => 'Lost')");
like($err, qr/no reply from Twilio/, 'lost reply on update: the update fails');
ok(wait_queue_drained($node), 'lost reply on update: the worker re-synced');
my $sid = $node->safe_psql('postgres',
	"SELECT twilio_sid FROM twilio_numbers.owned_numbers WHERE phone_number = '+15035550100' AND status = 'active'");
my $at_twilio = emu($emu, 'GET', '/_emulator/state');
my ($n) = grep { $_->{sid} eq $sid } @{ $at_twilio->{numbers} };
is($n->{friendly_name}, 'Before', 'lost reply on update: Twilio has the committed name again');

# ---- the release: lost reply on DELETE: sent again, 404 counts as released ----
clear();
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'reset_after', times => 1);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+15035550101')");
ok(wait_queue_drained($node), 'lost reply on release: the queue drains');
is(row_status('+15035550101'), 'released', 'lost reply on release: the row is released');
my @deletes = @{ emu_requests($emu, 'DELETE') };
ok(@deletes >= 2 && $deletes[-1]{status} == 404, 'lost reply on release: the second DELETE got 404');
unlike(emu_owned($emu), qr/\+15035550101/, 'lost reply on release: gone at Twilio');

# ---- the release: 500 twice, then success ----
clear();
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'status', status => 500, times => 2);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+15035550102')");
ok(wait_queue_drained($node), '5xx on release: retried until done');
is(row_status('+15035550102'), 'released', '5xx on release: released');
is(join(',', map { $_->{status} } @{ emu_requests($emu, 'DELETE') }), '500,500,204',
	'5xx on release: the DELETE was retried with backoff until Twilio took it');

# ---- the release: 500 on every try: backoff, then it goes through; a 5xx is
# an outage, not the job's failure, so those tries are not counted towards
# a dead letter ----
clear();
$node->safe_psql('postgres', "ALTER SYSTEM SET twilio_numbers.max_retries = 0; SELECT pg_reload_conf()");
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'status', status => 500, times => 3);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+15035550105')");
ok(wait_queue_drained($node), 'job-level retries: done in the end');
is($node->safe_psql('postgres',
	"SELECT attempts || ' ' || status FROM twilio_numbers.work_queue WHERE kind = 'release' AND phone_number = '+15035550105'"),
	'1 done', 'job-level retries: the 5xx tries not counted (an outage), done at the first counted attempt');
my @d = @{ emu_requests($emu, 'DELETE') };
is(scalar(@d), 4, 'job-level retries: one DELETE per attempt');
$node->safe_psql('postgres', "ALTER SYSTEM RESET twilio_numbers.max_retries; SELECT pg_reload_conf()");

# ---- the release: Twilio hangs on the DELETE, then answers ----
clear();
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'hang', times => 1);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+15035550104')");
ok(wait_queue_drained($node), 'hang on release: the worker times out and tries again');
is(row_status('+15035550104'), 'released', 'hang on release: released');

# ---- in the end: money conserved, Twilio == live rows ----
ok(wait_queue_drained($node), 'the queue is drained');
is(money_conserved($node), 't', 'balance = ledger sum, never below the limit');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.ledger l JOIN twilio_numbers.owned_numbers o USING (number_id) "
	  . "WHERE l.kind = 'monthly_fee' GROUP BY o.phone_number HAVING count(*) > 1"), '',
	'no number was charged twice');

$node->stop;
done_testing();
