# kill -9 of a backend in the middle of a purchase, and of the worker in the
# middle of draining the queue.  After the restart (and the worker's start-up
# reconcile) Twilio holds exactly the live numbers, and nothing is charged
# without a number.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('crash', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.timeout_ms = 2000",
	"restart_after_crash = on");
my $acct = new_account($node, 'Crashy', 100);
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct, '+13125550100')");

# the crash restart is over when the new worker has run its start-up reconcile
my $reconciled = 'last_reconcile_at IS NOT NULL';

# ---- 1. a backend killed after Twilio bought the number, before COMMIT ----
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe('BEGIN');
is($session->query_safe(
	"SELECT phone_number FROM twilio_numbers.numbers_purchase($acct, '+13125550101')"),
	'+13125550101', 'a purchase is made inside an open transaction');
like(emu_owned($emu), qr/\+13125550101/, 'Twilio has bought it');
my $w = worker_pid($node);
kill 'KILL', $pid;
wait_restarted($node, $w, $reconciled);
ok(wait_queue_drained($node), 'after the crash restart the queue drains');
unlike(emu_owned($emu), qr/\+13125550101/, 'the orphan was released at Twilio by the start-up reconcile');
is($node->safe_psql('postgres',
	"SELECT finding || ': ' || action FROM twilio_numbers.drift WHERE phone_number = '+13125550101'"),
	'orphan_at_twilio: release queued', 'and the reconcile recorded it in the drift table');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.owned_numbers WHERE phone_number = '+13125550101'"),
	'0', 'no row for it');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is(money_conserved($node), 't', 'balance = ledger sum');
eval { $session->quit };

# ---- 2. a backend killed while its purchase POST hangs at Twilio ----
emu_fault($emu, method => 'POST', path => 'IncomingPhoneNumbers\.json$', action => 'hang', times => 1);
$session = $node->background_psql('postgres', on_error_stop => 0);
$pid = $session->query_safe('SELECT pg_backend_pid()');
$session->{stdin} .= "SELECT twilio_numbers.numbers_purchase($acct, '+13125550102');\n";
$session->{run}->pump_nb();
ok($node->poll_query_until('postgres',
	"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid"),
	'the purchase waits on Twilio');
$w = worker_pid($node);
kill 'KILL', $pid;
wait_restarted($node, $w, $reconciled);
ok(wait_queue_drained($node), 'after the second crash the queue drains');
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is(money_conserved($node), 't', 'balance = ledger sum');
eval { $session->quit };

# ---- 3. the queue runner killed in the middle of a release ----
emu($emu, 'DELETE', '/_emulator/requests');
emu_fault($emu, method => 'DELETE', path => 'IncomingPhoneNumbers/', action => 'hang', times => 1);
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+13125550100')");
my $releasing = "FROM twilio_numbers.queue_runners WHERE activity LIKE 'twilio_numbers: release%'";
ok($node->poll_query_until('postgres', "SELECT bool_or(wait_event_type = 'Extension') $releasing"),
	'a queue runner is waiting on the DELETE');
my $runner = $node->safe_psql('postgres', "SELECT pid $releasing");
$w = worker_pid($node);
kill 'KILL', $runner;
wait_restarted($node, $w, $reconciled);
ok(wait_queue_drained($node), 'after the crash restart a runner finishes the release');
is($node->safe_psql('postgres',
	"SELECT status FROM twilio_numbers.owned_numbers WHERE phone_number = '+13125550100'"),
	'released', 'the row is released');
unlike(emu_owned($emu), qr/\+13125550100/, 'and the number is gone at Twilio');
cmp_ok(scalar @{ emu_requests($emu, 'DELETE') }, '>=', 2, 'the DELETE was sent again after the crash');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.ledger WHERE kind = 'refund'"), '1', 'refunded once');

# ---- in the end ----
is(emu_owned($emu), live_numbers($node), 'Twilio holds exactly the live numbers');
is(money_conserved($node), 't', 'money conserved through three crashes');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.ledger l LEFT JOIN twilio_numbers.owned_numbers o USING (number_id) "
	  . "WHERE l.kind IN ('setup_fee', 'monthly_fee') AND o.twilio_sid IS NULL"),
	'0', 'no charge without a number');
is($node->safe_psql('postgres', 'SELECT starts FROM twilio_numbers.worker_status'), '1',
	'shared memory was re-created by each crash restart (the worker counts from 1 again)');

# ---- numbers removed at Twilio behind our back, bought behind our back ----
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_purchase($acct, '+13125550103')");
my $gone_sid = $node->safe_psql('postgres',
	"SELECT twilio_sid FROM twilio_numbers.owned_numbers WHERE phone_number = '+13125550103' AND status = 'active'");
my $http = HTTP::Tiny->new;
my $auth = "$ENV{TN_API_KEY}:$ENV{TN_API_SECRET}";
(my $base = $emu->{url}) =~ s{://}{://$auth\@};
my $res = $http->request('DELETE', "$base/2010-04-01/Accounts/$ENV{TN_ACCOUNT_SID}/IncomingPhoneNumbers/$gone_sid.json");
is($res->{status}, 204, 'a number of ours is deleted directly at Twilio');
$res = $http->post_form("$base/2010-04-01/Accounts/$ENV{TN_ACCOUNT_SID}/IncomingPhoneNumbers.json",
	{ PhoneNumber => '+13125550104' });
is($res->{status}, 201, 'and another one is bought directly at Twilio');
is($node->safe_psql('postgres',
	"SELECT string_agg(finding || ' ' || phone_number || ': ' || action, '; ' ORDER BY finding) "
	  . "FROM twilio_numbers.numbers_reconcile()"),
	'unmanaged_at_twilio +13125550104: none: not bought here; reported, never touched; '
	  . 'vanished_at_twilio +13125550103: marked released (no refund)',
	'reconcile reports both and says what it did: the number bought elsewhere is not ours to release');
ok(wait_queue_drained($node), 'the queue drains');
like(emu_owned($emu), qr/\+13125550104/, 'the number bought elsewhere is still at Twilio');
is(join(',', grep { $_ ne '+13125550104' } split(/,/, emu_owned($emu))), live_numbers($node),
	'and otherwise Twilio holds exactly the live numbers');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM twilio_numbers.drift_report WHERE finding = 'vanished_at_twilio'"), '1',
	'the drift report keeps the finding');

# ---- configuration changed at Twilio behind our back: put back in step ----
$node->safe_psql('postgres',
	"SELECT twilio_numbers.numbers_purchase($acct, '+13125550105', friendly_name => 'Front desk', "
	  . "voice_url => 'https://app.example.com/voice')");
my $cfg_sid = $node->safe_psql('postgres',
	"SELECT twilio_sid FROM twilio_numbers.owned_numbers WHERE phone_number = '+13125550105' AND status = 'active'");
my $num_url = "$base/2010-04-01/Accounts/$ENV{TN_ACCOUNT_SID}/IncomingPhoneNumbers/$cfg_sid.json";
$res = $http->post_form($num_url,
	{ VoiceUrl => 'https://elsewhere.example.net/hijack', SmsUrl => 'https://elsewhere.example.net/sms' });
is($res->{status}, 200, 'a number of ours is reconfigured directly at Twilio');
is($node->safe_psql('postgres',
	"SELECT finding || ' ' || phone_number || ': ' || action || ' ' || (detail->'to_push')::text "
	  . "FROM twilio_numbers.numbers_reconcile()"),
	'config_drift +13125550105: resync queued {"SmsUrl": "", "VoiceUrl": "https://app.example.com/voice"}',
	'reconcile finds the drift and says what it will push back (ours, and clearing what we never set)');
ok(wait_queue_drained($node), 'the resync drains');
my $posts = emu_requests($emu, 'POST', qr{/IncomingPhoneNumbers/$cfg_sid\.json$});
is($posts->[-1]{form}{VoiceUrl}, 'https://app.example.com/voice', 'the worker sent our VoiceUrl back to Twilio');
$res = $http->get($num_url);
my $at_twilio = JSON::PP->new->decode($res->{content});
is(join(' | ', $at_twilio->{voice_url}, $at_twilio->{sms_url} // '', $at_twilio->{friendly_name}),
	'https://app.example.com/voice |  | Front desk', 'Twilio has our configuration again');
is($node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_reconcile()"), '0',
	'a second reconcile finds nothing');

$node->stop;
done_testing();
