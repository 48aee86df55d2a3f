# Physical copies.  A primary with two streaming standbys is killed while a
# purchase POST is on its way to Twilio; both standbys are promoted (a new
# timeline each).  The one with twilio_numbers.follow_promotion = on (an HA
# cluster's node) continues on its own: it settles the attempt it received
# as a crash restart does — the number the dead primary's rolled-back
# purchase left at Twilio is released without a DBA — and works normally.
# The other (what a physical backup recovered to a new timeline is) is a
# held copy: nothing but GETs from it, changes refused.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $url = $emu->{url};
my $creds = PostgreSQL::Test::Utils::tempdir() . '/copy.credentials';
open my $fh, '>', $creds or die $!;
print $fh "account_sid = $ENV{TN_ACCOUNT_SID}\napi_key = $ENV{TN_API_KEY}\napi_secret = $ENV{TN_API_SECRET}\n";
close $fh;
chmod 0600, $creds;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1, extra => [ '--locale=C.UTF-8', '--encoding=UTF8' ]);
$primary->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'twilio_numbers'",
	"twilio_numbers.api_url = '$url'", "twilio_numbers.pricing_url = '$url'",
	"twilio_numbers.trunking_url = '$url'", "twilio_numbers.numbers_url = '$url'",
	"twilio_numbers.account_sid = '$ENV{TN_ACCOUNT_SID}'",
	"twilio_numbers.auth_token = '$ENV{TN_AUTH_TOKEN}'",
	"twilio_numbers.retry_backoff_ms = 50", "twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100", "twilio_numbers.timeout_ms = 3000",
	"twilio_numbers.reconcile_interval_s = 1") . "\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION twilio_numbers');
$primary->poll_query_until('postgres', 'SELECT last_reconcile_at IS NOT NULL FROM twilio_numbers.worker_status')
  or die 'no start-up reconcile';

$primary->backup('base');
my $ha = PostgreSQL::Test::Cluster->new('ha_standby');
$ha->init_from_backup($primary, 'base', has_streaming => 1);
$ha->append_conf('postgresql.conf', "twilio_numbers.follow_promotion = on\n");
$ha->start;
my $copy = PostgreSQL::Test::Cluster->new('physical_copy');
$copy->init_from_backup($primary, 'base', has_streaming => 1);
$copy->append_conf('postgresql.conf', "twilio_numbers.credentials_file = '$creds'\n");
$copy->start;

my $acct = new_account($primary, 'Before the failover', 100);
$primary->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct, '+14155550190')");

# a purchase on its way to Twilio when the primary dies
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'latency', ms => 1500);
my $session = $primary->background_psql('postgres', on_error_stop => 0);
$session->{stdin} .= "SELECT twilio_numbers.numbers_purchase($acct, '+14155550192');\n";
$session->{run}->pump_nb();
ok($primary->poll_query_until('postgres',
	"SELECT posted FROM twilio_numbers.inflight WHERE phone_number = '+14155550192'"),
	'the purchase POST is on its way');
$primary->wait_for_catchup($ha);
$primary->wait_for_catchup($copy);
$primary->stop('immediate');
eval { $session->quit };
wait_until(sub { emu_owned($emu) =~ /\+14155550192/ }, 'the in-flight purchase to land at Twilio');

$ha->promote;
$copy->promote;

# the HA node follows its promotion and settles the attempt as after a crash
ok($ha->poll_query_until('postgres', "SELECT status = 'live' FROM twilio_numbers.numbers_incarnation()"),
	'with follow_promotion the promoted standby is live');
like(slurp_file($ha->logfile), qr/follows its promotion from timeline 1 to 2/, 'its log says it follows');
ok($ha->poll_query_until('postgres',
	"SELECT outcome = 'compensated' FROM twilio_numbers.purchase_attempts WHERE phone_number = '+14155550192'"),
	'the dead primary\'s in-flight purchase is compensated, without a DBA');
wait_until(sub { emu_owned($emu) !~ /\+14155550192/ }, 'its number to be released at Twilio');
is(emu_owned($emu), '+14155550190', 'Twilio holds exactly the committed number');
is($ha->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.drift WHERE finding = 'unproven_after_failover'"),
	'0', 'nothing is left unproven');
is($ha->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+14155550190') >= 0"), 't',
	'the new primary releases');
ok(wait_queue_drained($ha), 'and its queue drains');
is(emu_owned($emu), '', 'the number is gone from Twilio');
is(money_conserved($ha), 't', 'money conserved on the new primary');

# the other promoted copy holds: GETs only
ok($copy->poll_query_until('postgres', "SELECT status = 'held copy' FROM twilio_numbers.numbers_incarnation()"),
	'without follow_promotion the promoted copy is held');
my ($ret, $out, $err) = $copy->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT twilio_numbers.numbers_release($acct, '+14155550190')");
like($err, qr/TN020: this database is a copy held from Twilio/, 'a release there is refused');
like($err, qr/timeline 1, database \d+ \(postgres\); this is system \d+, timeline 2/,
	'saying what it was live as and what it is');
sleep 3;
my @writes = grep { ($_->{auth_user} // '') eq $ENV{TN_API_KEY} && $_->{method} ne 'GET' } @{ emu_requests($emu) };
is(scalar @writes, 0, 'the held copy sent nothing but GETs');
is($copy->safe_psql('postgres',
	"SELECT state FROM twilio_numbers.purchase_attempts WHERE phone_number = '+14155550192'"),
	'open', 'its copy of the attempt stays open until a DBA decides');

$ha->stop;
$copy->stop;
done_testing();
