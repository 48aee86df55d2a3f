# A purchase's debit that commits while a billing batch is in flight: the
# batch does not lock accounts while it works (so purchases never wait for
# it), the ledger trigger refuses the now-unaffordable charges, and the batch
# runs again with the accounts locked -> no charge beyond the credit limit.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('race', $emu, "twilio_numbers.reconcile_interval_s = -1",
	"twilio_numbers.billing_interval_s = 86400");

# an account that can pay exactly its 10 numbers' next period (10 x 1.00)
my $acct = new_account($node, 'Tight', 10);
$node->safe_psql('postgres', qq{
INSERT INTO twilio_numbers.owned_numbers
    (account_id, phone_number, twilio_sid, status, number_type, iso_country, monthly_price, currency,
     billing_anchor_day, period_start, next_billing_at)
SELECT $acct, '+1888555' || lpad(n::text, 4, '0'), 'PN' || md5(n::text), 'active', 'local', 'US', 1.00, 'USD',
       1, '2030-01-01', '2030-02-01 00:00:00+00'
FROM generate_series(1, 10) n});

# another session debits the account and keeps its transaction open
my $debit = $node->background_psql('postgres');
$debit->query_safe('BEGIN');
$debit->query_safe("INSERT INTO twilio_numbers.ledger (account_id, amount, kind, memo) VALUES ($acct, -3.00, 'adjustment', 'race')");

# billing starts: it computes 10 charges from the committed balance, then its
# ledger trigger waits for the account row
my $billing = $node->background_psql('postgres');
my $bpid = $billing->query_safe('SELECT pg_backend_pid()');
$billing->{stdin} .= "SELECT numbers_charged || ' ' || past_due FROM twilio_numbers.numbers_run_billing('2030-02-05 00:00:00+00');\n";
$billing->{run}->pump_nb();
ok($node->poll_query_until('postgres',
	"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $bpid"),
	'the billing batch waits for the account only at its debit');

$debit->query_safe('COMMIT');
wait_until(sub { $billing->{run}->pump_nb(); $billing->{stdout} =~ /^\d+ \d+$/m }, 'the billing pass');
like($billing->{stdout}, qr/^7 3$/m, 'after the concurrent debit only 7 of 10 numbers are charged, 3 turn past due');
is($node->safe_psql('postgres', "SELECT balance FROM twilio_numbers.accounts WHERE account_id = $acct"),
	'0.00', 'the balance ends at the credit limit, not below');
is(money_conserved($node), 't', 'balance = ledger sum');
is($node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE status = 'past_due') || ' ' || count(*) FILTER (WHERE status = 'active') "
	  . "FROM twilio_numbers.owned_numbers WHERE account_id = $acct"), '3 7', 'the rows agree');

$billing->quit;
$debit->quit;
$node->stop;
done_testing();
