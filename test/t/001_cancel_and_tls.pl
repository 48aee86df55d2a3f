# Cancelling a hung Twilio call, and TLS certificate verification.
use strict;
use warnings;

use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('cancel', $emu);

# warm the pricing cache so the hung request below is the search itself
$node->safe_psql('postgres', "SELECT count(*) FROM twilio_numbers.numbers_pricing('US')");

# ---- pg_cancel_backend ends a call that Twilio never answers ----------------
emu_fault($emu, path => 'AvailablePhoneNumbers/US/Local', action => 'hang', times => 1);
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->{stdin} .= "SELECT count(*) FROM twilio_numbers.numbers_search('US');\n";
$session->{run}->pump_nb();

# the backend shows that it waits on Twilio
ok( $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid"),
	'the hung call shows wait_event_type Extension');

my $t0 = time();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
wait_until(sub { $session->{run}->pump_nb(); $session->{stderr} =~ /canceling statement/ },
	'the cancel');
my $elapsed = time() - $t0;
like($session->{stderr}, qr/canceling statement due to user request/,
	'pg_cancel_backend ends the hung search');
note sprintf('cancel took %.3f s', $elapsed);
$session->{stderr} = '';
$session->{stdout} = '';

# the session carries on, and its next call to Twilio works
is($session->query_safe("SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 3)"),
	'3', 'the session stays usable after the cancel');
$session->quit;

# ---- statement_timeout ends a hung call too --------------------------------
emu_fault($emu, path => 'AvailablePhoneNumbers/US/Local', action => 'hang', times => 1);
my ($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '1s'; SELECT count(*) FROM twilio_numbers.numbers_search('US')");
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends the hung search');

# ---- TLS: a self-signed certificate is refused unless ca_file trusts it -----
# (absolute: the server reads ca_file from its data directory, and since 16
# the TAP library's temporary directories lie under TESTDATADIR, "tmp_check"
# relative to the working directory when unset; 15 used TESTDIR/tmp_check)
my $dir = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir());
system_or_bail('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
	'-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
	'-keyout', "$dir/key.pem", '-out', "$dir/cert.pem");
my $https = spawn_listening(qr{listening on (https://\S+)},
	'node', "$ENV{TN_ROOT}/test/t/tls_proxy.js", "$dir/cert.pem", "$dir/key.pem", $emu->{url})->{url};

emu($emu, 'DELETE', '/_emulator/requests');
my $search = "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 2)";
($ret, $out, $err) = $node->psql('postgres',
	"SET twilio_numbers.api_url = '$https'; SET twilio_numbers.max_retries = 0; $search");
like($err, qr/TLS certificate could not be verified/, 'a self-signed certificate is refused by default');
like($err, qr/self-signed certificate/i, 'and the detail says why');
is(scalar @{ emu_requests($emu, 'GET', qr/Local\.json/) }, 0, 'and nothing reached the server behind it');

($ret, $out, $err) = $node->psql('postgres',
	"SET twilio_numbers.api_url = '$https'; SET twilio_numbers.ca_file = '$dir/cert.pem'; $search");
is($out, '2', 'with ca_file naming its CA the same server is trusted');

# verification of the host name stays on: the certificate names localhost, not 127.0.0.1
(my $by_ip = $https) =~ s/localhost/127.0.0.1/;
($ret, $out, $err) = $node->psql('postgres',
	"SET twilio_numbers.api_url = '$by_ip'; SET twilio_numbers.ca_file = '$dir/cert.pem'; "
	  . "SET twilio_numbers.max_retries = 0; $search");
like($err, qr/TLS certificate could not be verified/, 'a certificate for another host name is refused');

$node->stop;
done_testing();
