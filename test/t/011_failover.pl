# A primary with a streaming standby is killed while a purchase is on its way
# to Twilio.  The attempt row reached the standby before the POST was sent;
# once promoted (without twilio_numbers.follow_promotion: held until a DBA
# runs numbers_make_live()), the standby's worker runs, settles the attempts it received,
# and reports — never releases — what an attempt of the old primary may have
# bought (its commit may have been lost with the primary).  In the end Twilio
# holds nothing the new primary cannot account for except what it reports.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TwilioNumbersTest;

my $emu = start_emulator();
my $url = $emu->{url};

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1, extra => [ '--locale=C.UTF-8', '--encoding=UTF8' ]);
$primary->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'twilio_numbers'",
	"twilio_numbers.api_url = '$url'", "twilio_numbers.pricing_url = '$url'",
	"twilio_numbers.trunking_url = '$url'", "twilio_numbers.numbers_url = '$url'",
	"twilio_numbers.messaging_url = '$url'",
	"twilio_numbers.account_sid = '$ENV{TN_ACCOUNT_SID}'",
	"twilio_numbers.auth_token = '$ENV{TN_AUTH_TOKEN}'",
	"twilio_numbers.retry_backoff_ms = 50", "twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100", "twilio_numbers.timeout_ms = 3000") . "\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION twilio_numbers');
$primary->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# a committed purchase, and a rolled-back one settled before the failover
my $acct = new_account($primary, 'Before the failover', 100);
$primary->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct, '+14155550180')");
$primary->safe_psql('postgres',
	"BEGIN; SELECT twilio_numbers.numbers_purchase($acct, '+14155550181'); ROLLBACK;");
ok(wait_queue_drained($primary), 'the primary settles its rollback');

# a purchase on its way to Twilio when the primary dies
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 1500);
my $session = $primary->background_psql('postgres', on_error_stop => 0);
$session->{stdin} .= "SELECT twilio_numbers.numbers_purchase($acct, '+14155550182');\n";
$session->{run}->pump_nb();
ok($primary->poll_query_until('postgres',
	"SELECT posted FROM twilio_numbers.inflight WHERE phone_number = '+14155550182'"),
	'the purchase POST is on its way');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
	"SELECT state FROM twilio_numbers.purchase_attempts WHERE phone_number = '+14155550182'"),
	'open', 'the standby has the attempt, committed before the POST');
$primary->stop('immediate');
eval { $session->quit };
wait_until(sub { emu_owned($emu) =~ /\+14155550182/ }, 'the in-flight purchase to land at Twilio');

# the standby takes over; without twilio_numbers.follow_promotion it is a
# held copy until a DBA says it is the live database
$standby->promote;
ok($standby->poll_query_until('postgres', "SELECT status = 'held copy' FROM twilio_numbers.numbers_incarnation()"),
	'the promoted standby (follow_promotion off) is a held copy');
wait_until(sub { slurp_file($standby->logfile) =~ /database "postgres" is a copy held from Twilio/ },
	'the WARNING that says so');
is($standby->safe_psql('postgres', 'SELECT last_reconcile_at IS NULL FROM twilio_numbers.worker_status'), 't',
	'its worker does not reconcile while held');
like($standby->safe_psql('postgres', 'SELECT twilio_numbers.numbers_make_live()'),
	qr/^live as system \d+, timeline 2, database postgres \(was \d+:1:\d+/, 'a DBA makes it live');
ok($standby->poll_query_until('postgres',
	'SELECT pid IS NOT NULL AND last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status'),
	"the promoted standby's worker runs its start-up reconcile");
ok(wait_queue_drained($standby), 'and settles what it can');
is($standby->safe_psql('postgres',
	"SELECT finding || ': ' || action FROM twilio_numbers.drift WHERE phone_number = '+14155550182'"),
	'unproven_after_failover: none: reported, never released (attempted before a failover or restore)',
	'what the old primary may have bought is reported');
like(emu_owned($emu), qr/\+14155550182/, 'and not released');
is($standby->safe_psql('postgres',
	"SELECT outcome FROM twilio_numbers.purchase_attempts WHERE phone_number = '+14155550182'"),
	'unproven', 'its attempt is closed as unproven');
is($standby->safe_psql('postgres',
	"SELECT string_agg(phone_number, ',' ORDER BY phone_number) FROM twilio_numbers.unmanaged_numbers"),
	'+14155550182', 'it is listed for a DBA to adopt or release');
unlike(emu_owned($emu), qr/\+14155550181/, 'the rollback settled before the failover stays settled');

my $reported = $standby->safe_psql('postgres',
	"SELECT string_agg(phone_number, ',') FROM twilio_numbers.unmanaged_numbers");
my @unaccounted = grep { my $p = $_; $p ne '' && index(",$reported,", ",$p,") < 0 }
  split /,/, emu_owned($emu);
is(join(',', grep { index(',' . live_numbers($standby) . ',', ",$_,") < 0 } @unaccounted), '',
	'Twilio holds nothing the new primary cannot account for except what it reports');

# the DBA decides: the customer keeps it (it was paid on the old primary)
is($standby->safe_psql('postgres',
	"SELECT origin FROM twilio_numbers.numbers_adopt($acct, '+14155550182', first_period_paid => true)"),
	'adopted', 'a DBA adopts it on the new primary');
is(emu_owned($emu), live_numbers($standby), 'and Twilio holds exactly the live numbers');
is(money_conserved($standby), 't', 'money conserved on the new primary');

$standby->stop;
done_testing();
