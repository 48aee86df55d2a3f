# Nothing waits on an application, and reconcile scales: a reconcile of an
# account whose numbers span several pages of Twilio's listing makes one
# request per page when nothing differs (a live row the listing showed is not
# looked up again); an application transaction left open after a purchase on
# account X (its account row locked) while X has a number due delays nobody:
# the worker's billing pass bills the other accounts and skips X, another
# customer's release and a rolled-back purchase's compensation complete; X is
# billed once the application commits.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('never_waits', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.queue_retry_max_ms = 1000",
	# reconcile by hand only (after its start-up pass)
	"twilio_numbers.reconcile_interval_s = 0");
$node->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");

# ---- reconcile: requests close to the listing's pages ----
my $r = new_account($node, 'Big', 5000);
my $bought = 0;
for my $area (qw(206 212 213 305 310 312 415 503 512 617 646 702))
{
	# the 100 numbers of the 555-01xx block of each area code (at most 100 a purchase)
	$bought += $node->safe_psql('postgres',
		"SELECT count(*) FROM twilio_numbers.numbers_purchase($r, "
		  . "ARRAY(SELECT '+1${area}555' || lpad((100 + i)::text, 4, '0') FROM generate_series(0, 99) i))");
}
cmp_ok($bought, '>', 1000, "the account holds $bought numbers: more than one page of Twilio's listing");
emu($emu, 'DELETE', '/_emulator/requests');
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.numbers_reconcile()'), '0',
	'reconcile finds nothing to do');
my $log = emu_requests($emu);
my @pages = grep { $_->{method} eq 'GET' && $_->{path} =~ m{/IncomingPhoneNumbers\.json$} } @$log;
my $pages = int(($bought + 999) / 1000);
note scalar(@$log) . " requests for $bought numbers";
is(scalar(@pages), $pages, "one listing request per page ($pages)");
is(scalar(@$log) - scalar(@pages), 0, 'and no look-up of a number the listing showed');

# a number gone at Twilio is still looked up (and found vanished)
my ($gone, $gone_sid) = split /\|/, $node->safe_psql('postgres',
	"SELECT phone_number, twilio_sid FROM twilio_numbers.owned_numbers WHERE account_id = $r "
	  . "AND status = 'active' ORDER BY phone_number LIMIT 1");
is(twilio_api($emu, 'DELETE', "/2010-04-01/Accounts/$ENV{TN_ACCOUNT_SID}/IncomingPhoneNumbers/$gone_sid.json")
	  ->{status}, 204, 'a number removed at Twilio behind our back');
emu($emu, 'DELETE', '/_emulator/requests');
is($node->safe_psql('postgres', 'SELECT finding FROM twilio_numbers.numbers_reconcile()'), 'vanished_at_twilio',
	'reconcile reports it vanished');
my @lookups = grep { $_->{path} =~ m{/IncomingPhoneNumbers/PN\w+\.json$} } @{ emu_requests($emu) };
is(scalar(@lookups), 2, 'after looking that one number up (home account, then home again)');

# ---- an application transaction open on account X ----
my $x = new_account($node, 'X', 100);
my $y = new_account($node, 'Y', 100);
my $z = new_account($node, 'Z', 100);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($y, '+14165550120')");
# synthetic numbers due now (Twilio does not hold them; no more reconcile):
# one of X, and one of each of 50 other accounts
$node->safe_psql('postgres', qq{
ALTER SYSTEM SET twilio_numbers.reconcile_interval_s = -1;
SELECT pg_reload_conf();
INSERT INTO twilio_numbers.accounts (name) SELECT 'bulk ' || i FROM generate_series(1, 50) i;
SELECT count(twilio_numbers.numbers_deposit(account_id, 100)) FROM twilio_numbers.accounts WHERE name LIKE 'bulk %';
INSERT INTO twilio_numbers.owned_numbers
    (account_id, phone_number, twilio_sid, status, number_type, iso_country, monthly_price, currency,
     billing_anchor_day, period_start, next_billing_at)
SELECT a.account_id, '+1999' || lpad(a.account_id::text, 7, '0'), 'PN' || md5(a.account_id::text), 'active',
       'local', 'US', 1.00, 'USD', extract(day FROM d0)::int, d0,
       twilio_numbers.period_end(d0, extract(day FROM d0)::int)::timestamp AT TIME ZONE 'UTC'
FROM twilio_numbers.accounts a,
     (SELECT ((now() AT TIME ZONE 'UTC')::date - interval '1 month')::date AS d0) x
WHERE a.name LIKE 'bulk %' OR a.account_id = $x;
});
my $due = "SELECT count(*) FROM twilio_numbers.owned_numbers WHERE phone_number LIKE '+1999%' AND next_billing_at <= now()";
is($node->safe_psql('postgres', $due), '51', '51 numbers are due, one of them X\'s');

my $app = $node->background_psql('postgres', on_error_stop => 0);
$app->query_safe('BEGIN');
$app->query_safe("SELECT twilio_numbers.numbers_purchase($x, '+14165550121')");
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction' "
	  . "AND query LIKE '%numbers_purchase($x,%')"),
	"an application transaction is open on X after its purchase (X's account row locked)");

my $last_run = $node->safe_psql('postgres', 'SELECT coalesce(max(run_id), 0) FROM twilio_numbers.billing_runs');
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.billing_interval_s = 1');
$node->reload;
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($y, '+14165550120')");
$node->safe_psql('postgres', "BEGIN; SELECT twilio_numbers.numbers_purchase($z, '+14165550122'); ROLLBACK;");
ok($node->poll_query_until('postgres',
	"SELECT status = 'finished' FROM twilio_numbers.billing_runs WHERE run_id = "
	  . "(SELECT min(run_id) FROM twilio_numbers.billing_runs WHERE run_id > $last_run AND started_by = 'worker')"),
	'the worker finished a billing pass meanwhile');
$node->safe_psql('postgres', 'ALTER SYSTEM SET twilio_numbers.billing_interval_s = 3600');
$node->reload;
my ($charged, $skipped) = split /\|/, $node->safe_psql('postgres',
	"SELECT numbers_charged, skipped FROM twilio_numbers.billing_runs WHERE run_id = "
	  . "(SELECT min(run_id) FROM twilio_numbers.billing_runs WHERE run_id > $last_run AND started_by = 'worker')");
is($charged, '50', 'it billed the 50 other accounts');
is($skipped, '1', "and skipped X's number for now");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM twilio_numbers.work_queue WHERE status = 'done' "
	  . "AND ((kind = 'release' AND phone_number = '+14165550120') "
	  . "  OR (kind = 'compensate' AND phone_number = '+14165550122'))"),
	"Y's release and Z's compensation completed meanwhile");
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%numbers_purchase($x,%'"),
	'1', 'all while the application transaction stayed open');

$app->query_safe('COMMIT');
$app->quit;
$node->safe_psql('postgres', 'SELECT twilio_numbers.numbers_run_billing()');
is($node->safe_psql('postgres', $due), '0', 'once it committed, X is billed too');
ok(wait_queue_drained($node), 'settled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM twilio_numbers.integrity'), '0', 'no invariant broken');

$node->stop;
done_testing();
