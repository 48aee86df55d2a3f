# The worker's billing: kill -9 in the middle of a billing pass, restart,
# pass again -> still exactly one charge per (number, period) and balance =
# ledger; and after downtime ("a clock six months ahead") the missed periods
# are caught up in order.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('billing', $emu,
	"restart_after_crash = on",
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.billing_interval_s = 3600",
	"twilio_numbers.billing_batch_size = 300",
	# synthetic numbers that Twilio does not hold: no reconcile
	"twilio_numbers.reconcile_interval_s = -1");

# 300 accounts x 100 numbers, each bought six months and a day ago: six
# periods have been missed (as if the clock had moved six months ahead
# while the worker was down)
$node->safe_psql('postgres', q{
INSERT INTO twilio_numbers.accounts (name) SELECT 'bulk ' || i FROM generate_series(1, 300) i;
SELECT count(twilio_numbers.numbers_deposit(account_id, 1000)) FROM twilio_numbers.accounts;
INSERT INTO twilio_numbers.owned_numbers
    (account_id, phone_number, twilio_sid, status, number_type, iso_country, monthly_price, currency,
     billing_anchor_day, period_start, next_billing_at)
SELECT a.account_id, '+1999' || lpad((a.account_id * 100 + n)::text, 7, '0'),
       'PN' || md5(a.account_id || '-' || n), 'active', 'local', 'US', 1.00, 'USD',
       extract(day FROM d0)::int, d0,
       twilio_numbers.period_end(d0, extract(day FROM d0)::int)::timestamp AT TIME ZONE 'UTC'
FROM twilio_numbers.accounts a, generate_series(1, 100) n,
     (SELECT ((now() AT TIME ZONE 'UTC')::date - interval '6 months' - interval '1 day')::date AS d0) x;
});
my $expected_periods = $node->safe_psql('postgres', q{
SELECT count(*) FROM generate_series(1, 12) k,
     (SELECT ((now() AT TIME ZONE 'UTC')::date - interval '6 months' - interval '1 day')::date AS d0) x
WHERE twilio_numbers._period_start(d0, extract(day FROM d0)::int, k) <= (now() AT TIME ZONE 'UTC')::date});
is($expected_periods, '6', 'six periods are due for each number');

# the worker bills at start-up: restart it, and kill it in the middle of a batch
$node->restart;
ok($node->poll_query_until('postgres',
	"SELECT activity LIKE 'twilio_numbers: billing batch%' FROM twilio_numbers.worker_status"),
	'the worker is in the middle of a billing pass');
my $progress = $node->safe_psql('postgres',
	"SELECT batches_done || '/' || batches_total FROM twilio_numbers.billing_runs WHERE status = 'running'");
note "progress when killed: $progress";
my $worker = worker_pid($node);
kill 'KILL', $worker;

# the crash restart: a new worker bills again at start-up and finishes
wait_restarted($node, $worker);
my $killed_run = $node->safe_psql('postgres',
	"SELECT max(run_id) FROM twilio_numbers.billing_runs WHERE started_by = 'worker' AND run_id <= "
	  . "(SELECT run_id FROM twilio_numbers.billing_runs WHERE status IN ('running', 'interrupted') ORDER BY run_id LIMIT 1)");
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM twilio_numbers.billing_runs WHERE run_id > $killed_run AND status = 'finished')"),
	'after the restart a billing pass finishes');
is($node->safe_psql('postgres',
	"SELECT string_agg(status, ',' ORDER BY run_id) FROM twilio_numbers.billing_runs WHERE run_id >= $killed_run"),
	'interrupted,finished', 'the killed pass is marked interrupted, the next one finished');
cmp_ok($node->safe_psql('postgres',
	"SELECT batches_done FROM twilio_numbers.billing_runs WHERE status = 'interrupted'"),
	'<', $node->safe_psql('postgres',
	"SELECT batches_total FROM twilio_numbers.billing_runs WHERE status = 'interrupted'"),
	'it was interrupted before its last batch');

# one more pass changes nothing
$node->safe_psql('postgres', 'SELECT twilio_numbers.numbers_run_billing()');

is(double_charges($node), '0', 'exactly one charge per (number, period)');
is($node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE n <> 6) || ' of ' || count(*) FROM "
	  . "(SELECT o.number_id, count(l.entry_id) n FROM twilio_numbers.owned_numbers o "
	  . " LEFT JOIN twilio_numbers.ledger l ON l.number_id = o.number_id AND l.kind = 'monthly_fee' "
	  . " GROUP BY o.number_id) c"), '0 of 30000', 'every number was charged its six missed periods');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (
  SELECT number_id, period_start, period_end, entry_id,
         lead(period_start) OVER w AS next_start, lead(entry_id) OVER w AS next_entry
  FROM twilio_numbers.ledger WHERE kind = 'monthly_fee'
  WINDOW w AS (PARTITION BY number_id ORDER BY period_start)) p
WHERE next_start IS NOT NULL AND (next_start <> period_end OR next_entry < entry_id)}), '0',
	'the periods follow each other without gap, and were charged in order');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM twilio_numbers.owned_numbers o
WHERE (o.next_billing_at AT TIME ZONE 'UTC')::date <>
      (SELECT max(period_end) FROM twilio_numbers.ledger l WHERE l.number_id = o.number_id AND l.kind = 'monthly_fee')
   OR o.status <> 'active'}), '0', 'each number is active, next billed at the end of its last charged period');
is(money_conserved($node), 't', 'balance = ledger sum for every account');
is($node->safe_psql('postgres', "SELECT sum(balance) FROM twilio_numbers.accounts"), '120000.00',
	'300 x 1000 deposited, 30000 x 6 x 1.00 charged');
my $worker_note = $node->safe_psql('postgres', 'SELECT last_billing_at IS NOT NULL FROM twilio_numbers.worker_status');
is($worker_note, 't', 'worker_status shows the last billing pass');

$node->stop;
done_testing();
