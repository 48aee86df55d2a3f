# 16 clients buying, releasing, depositing and rolling back on ONE account
# while Twilio injects faults: money is conserved (balance = ledger sum), the
# balance never goes below the credit limit, and Twilio ends up holding
# exactly the live numbers.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('concurrency', $emu,
	"max_connections = 40",
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 1000",
	"twilio_numbers.timeout_ms = 3000");
my $acct = new_account($node, 'Busy', 30);
# a setup fee that is not refunded drains the account, so that purchases
# are refused for lack of funds (TN001) while others release and deposit
$node->safe_psql('postgres', "INSERT INTO twilio_numbers.price_list VALUES ('US', 'local', 0.50, 1.00, 'USD')");
$node->safe_psql('postgres', "UPDATE twilio_numbers.accounts SET credit_limit = 5 WHERE account_id = $acct");
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");

# the pool the clients buy from: 60 numbers of Austin's 555-01xx block
$node->safe_psql('postgres', q{
CREATE TABLE tap_pool AS
  SELECT '+1512555' || lpad((100 + i)::text, 4, '0') AS phone FROM generate_series(0, 59) i;
CREATE TABLE tap_outcomes (outcome text);

-- one random operation; expected refusals are outcomes, not client errors
CREATE FUNCTION tap_op(acct bigint, rollback_it boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r float8 := random();
    p text;
    res text;
BEGIN
    IF rollback_it OR r < 0.55 THEN
        SELECT phone INTO p FROM tap_pool
        WHERE phone NOT IN (SELECT phone_number FROM twilio_numbers.owned_numbers WHERE status <> 'released')
        ORDER BY random() LIMIT 1;
        BEGIN
            PERFORM twilio_numbers.numbers_purchase(acct, p);
            res := 'bought';
        EXCEPTION WHEN OTHERS THEN
            res := 'buy refused ' || SQLSTATE;
        END;
    ELSIF r < 0.95 THEN
        SELECT phone_number INTO p FROM twilio_numbers.owned_numbers
        WHERE account_id = acct AND status = 'active' ORDER BY random() LIMIT 1;
        IF p IS NULL THEN
            res := 'nothing to release';
        ELSE
            BEGIN
                PERFORM twilio_numbers.numbers_release(acct, p);
                res := 'released';
            EXCEPTION WHEN OTHERS THEN
                res := 'release refused ' || SQLSTATE;
            END;
        END IF;
    ELSE
        PERFORM twilio_numbers.numbers_deposit(acct, 0.50);
        res := 'deposited';
    END IF;
    IF rollback_it THEN
        res := res || ' (rolled back)';
    END IF;
    RETURN res;
END $$;
});

my $dir = PostgreSQL::Test::Utils::tempdir();
open my $f, '>', "$dir/ops.sql" or die;
print $f "INSERT INTO tap_outcomes SELECT tap_op($acct);\n";
close $f;
open $f, '>', "$dir/rollback.sql" or die;
print $f "BEGIN;\nSELECT tap_op($acct, true);\nROLLBACK;\nINSERT INTO tap_outcomes VALUES ('a purchase rolled back');\n";
close $f;

# Twilio misbehaves while the clients run
emu_fault($emu, path => '.', action => 'latency', ms => 20, times => 0);
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'reset_after', times => 3);
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 429,
	retry_after => 1, times => 3);
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'status', status => 503, times => 3);
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'status', status => 500, times => 5);
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'reset_after', times => 3);
emu_fault($emu, method => 'GET', path => 'AvailablePhoneNumbers', action => 'status', status => 503, times => 5);

$node->command_ok(
	[ 'pgbench', '-n', '-c', '16', '-j', '4', '-T', '20',
	  '-f', "$dir/ops.sql\@9", '-f', "$dir/rollback.sql\@1", 'postgres' ],
	'16 clients ran buys, releases, deposits and rollbacks for 20 s');
emu($emu, 'DELETE', '/_emulator/faults');

my $outcomes = $node->safe_psql('postgres',
	"SELECT string_agg(outcome || ' x' || n, ', ' ORDER BY n DESC) FROM "
	  . "(SELECT outcome, count(*) n FROM tap_outcomes GROUP BY 1) o");
note "outcomes: $outcomes";
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM tap_outcomes WHERE outcome = 'bought'"),
	'>', 10, 'purchases went through');
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM tap_outcomes WHERE outcome = 'released'"),
	'>', 5, 'releases went through');
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM tap_outcomes WHERE outcome = 'buy refused TN001'"),
	'>', 0, 'purchases were refused for insufficient funds');

ok(wait_queue_drained($node), 'the worker drained the queue');
is(money_conserved($node), 't', 'balance = sum of the ledger, and not below the credit limit');
is($node->safe_psql('postgres',
	"SELECT balance >= -credit_limit FROM twilio_numbers.accounts WHERE account_id = $acct"), 't',
	'the account ends at or above its limit');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is(double_charges($node), '0', 'one charge per number and period');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers o WHERE NOT EXISTS "
	  . "(SELECT 1 FROM twilio_numbers.ledger l WHERE l.number_id = o.number_id AND l.kind = 'monthly_fee')"),
	'0', 'every number row was charged (no number without a charge)');
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.queue_dead_letters"), '0', 'no dead letters');

# no release is left between our row and Twilio (the numbers themselves
# were compared with Twilio's above)
my $released = $node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE status = 'released'");
note "released rows: $released";
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.owned_numbers WHERE status = 'releasing'"),
	'0', 'no release left half done');

$node->stop;
done_testing();
