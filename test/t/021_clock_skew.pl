# Twilio's clock, not ours: with the emulator's clock an hour ahead of the
# database's, then an hour behind, a purchase whose reply is lost is still
# taken as ours (charged, row written), and one rolled back is still
# compensated by the worker — never reported as "not bought here".  The skew
# is measured from the replies' Date header, shown in twilio_numbers.twilio_clock
# and logged once per episode by the worker.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('skew', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 500",
	"twilio_numbers.timeout_ms = 2000");
my $acct = new_account($node, 'Skewed', 100);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");

sub clock_row
{
	return $node->safe_psql('postgres',
		"SELECT round(skew_ms / 1000)::int || ' ' || skewed::int || ' ' || (uncertainty_ms < 2000)::int "
		  . "FROM twilio_numbers.twilio_clock");
}
sub log_count
{
	my ($re) = @_;
	my $log = slurp_file($node->logfile);
	my @m = $log =~ /$re/g;
	return scalar @m;
}

like(clock_row(), qr/^(-1|0|1) 0 1$/, 'clocks in step: the measured skew is about 0, not skewed');

my @cases = ([ 3600, 'ahead of', '+1', '15' ], [ -3600, 'behind', '-1', '16' ]);
for my $case (@cases)
{
	my ($shift, $word, $sign, $n) = @$case;
	emu($emu, 'POST', '/_emulator/clock', { advance_s => $shift });
	my $mine = "+15035550${n}0";
	my $back = "+15035550${n}1";

	# a lost reply on a purchase that commits: the look-up finds it, ours
	emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_after', times => 1);
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT status FROM twilio_numbers.numbers_purchase($acct, '$mine')");
	is($out, 'active', "Twilio $sign h: a lost reply is taken as ours") or diag($err);
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM twilio_numbers.ledger l JOIN twilio_numbers.owned_numbers o USING (number_id) "
		  . "WHERE o.phone_number = '$mine' AND l.kind = 'monthly_fee'"), '1',
		"Twilio $sign h: charged its first period");
	like(clock_row(), qr/^\Q${\($shift > 0 ? '' : '-')}\E3600 1 1$/, "Twilio $sign h: the view shows the skew");

	# a lost reply, and the look-up fails too: rolled back; the worker's
	# look-up judges what Twilio holds by Twilio's clock and compensates it
	emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_after', times => 1);
	emu_fault($emu, method => 'GET', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 500,
		times => 4);
	($rc, $out, $err) = $node->psql('postgres',
		"BEGIN; SELECT twilio_numbers.numbers_purchase($acct, '$back'); ROLLBACK;");
	like($err, qr/could not establish what Twilio did/, "Twilio $sign h: lost reply and failed look-up");
	ok($node->poll_query_until('postgres',
		"SELECT outcome = 'compensated' FROM twilio_numbers.purchase_attempts WHERE phone_number = '$back'"),
		"Twilio $sign h: the rolled-back purchase's attempt is compensated");
	unlike(emu_owned($emu), qr/\Q$back\E/, "Twilio $sign h: Twilio does not hold the rolled-back number");

	# reconcile reaches the same verdicts
	$node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()');
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM twilio_numbers.drift WHERE phone_number IN ('$mine', '$back')"), '0',
		"Twilio $sign h: reconcile finds nothing to say about either number");
	is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.unmanaged_numbers"), '0',
		"Twilio $sign h: nothing reported as not bought here");

	ok(eval { wait_until(sub { log_count(qr/WARNING:  twilio_numbers: Twilio's clock is 3[56]\d\d\.\d s \Q$word\E this server's/) >= 1 },
		"the worker's warning") }, "Twilio $sign h: the worker warns")
	  or diag(join('', grep { /twilio_numbers|clock/ } split /^/, slurp_file($node->logfile)));

	# back in step: the episode ends (one LOG line)
	emu($emu, 'POST', '/_emulator/clock', { advance_s => -$shift });
	$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 1)");
	like(clock_row(), qr/^(-1|0|1) 0 1$/, "Twilio $sign h, then back: not skewed any more");
	ok(wait_until(sub { log_count(qr/Twilio's clock agrees with this server's again/) >= ($shift > 0 ? 1 : 2) },
		'the worker\'s all-clear'), "Twilio $sign h, then back: the worker says so");
}

# once per episode, however many requests measured it
is(log_count(qr/WARNING:  twilio_numbers: Twilio's clock is [\d.]+ s ahead of/), 1, 'one warning for the hour ahead');
is(log_count(qr/WARNING:  twilio_numbers: Twilio's clock is [\d.]+ s behind/), 1, 'one warning for the hour behind');
is($node->safe_psql('postgres', 'SELECT episodes FROM twilio_numbers.twilio_clock'), '2', 'two episodes counted');
ok(wait_queue_drained($node), 'the queue is drained');
is(money_conserved($node), 't', 'money conserved');

$node->stop;
done_testing();
