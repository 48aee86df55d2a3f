# TwilioNumbersTest.pm — helpers shared by the TAP tests: start the Twilio
# emulator, drive its /_emulator/ controls, and make a cluster with the
# extension preloaded and pointed at the emulator.
package TwilioNumbersTest;

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);
use Time::Local ();

our @EXPORT = qw(spawn_listening start_emulator emu emu_requests emu_fault emu_owned new_node new_cluster wait_until
  wait_queue_drained money_conserved new_account live_numbers double_charges worker_pid wait_restarted
  twilio_api buy_elsewhere max_overlap emu_add_numbers adopt_listed);

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 30);

# Start a server process that prints the URL it listens on (matched by
# $url_re, one capture) as its first line; returns { url, pid }.  It is
# stopped when the test ends.
my @spawned;

sub spawn_listening
{
	my ($url_re, @cmd) = @_;
	my $out = PostgreSQL::Test::Utils::tempdir() . '/spawned.out';
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# the child never returns into the test (nor runs its END blocks)
		open STDOUT, '>', $out or POSIX::_exit(127);
		open STDERR, '>', "$out.err" or POSIX::_exit(127);
		exec(@cmd) or print STDERR "exec $cmd[0]: $!\n";
		POSIX::_exit(127);
	}
	push @spawned, $pid;
	for (1 .. 400)
	{
		if (open my $fh, '<', $out)
		{
			my $line = <$fh>;
			close $fh;
			return { url => $1, pid => $pid } if defined $line && $line =~ $url_re;
		}
		usleep(50_000);
	}
	die "$cmd[0] did not start";
}

# Start test/twilio-emulator on a free port; returns { url, pid }.
sub start_emulator
{
	my $root = $ENV{TN_ROOT} or die "TN_ROOT is not set";
	return spawn_listening(qr{listening on (http://\S+)}, "$root/test/twilio-emulator", '--port', '0',
		'--account-sid', $ENV{TN_ACCOUNT_SID}, '--auth-token', $ENV{TN_AUTH_TOKEN},
		'--api-key', $ENV{TN_API_KEY}, '--api-secret', $ENV{TN_API_SECRET});
}

END
{
	kill 'TERM', @spawned if @spawned;
}

# Call a control: emu($emu, 'POST', '/_emulator/faults', {...}) -> decoded JSON
sub emu
{
	my ($emu, $method, $path, $body) = @_;
	my %opts = (headers => { 'Content-Type' => 'application/json' });
	$opts{content} = $json->encode($body) if defined $body;
	my $res = $http->request($method, $emu->{url} . $path, \%opts);
	die "emulator $method $path: $res->{status} $res->{content}" unless $res->{success};
	return length($res->{content}) ? $json->decode($res->{content}) : undef;
}

# The request log, optionally only requests whose method/path match.
sub emu_requests
{
	my ($emu, $method, $path_re) = @_;
	my $all = emu($emu, 'GET', '/_emulator/requests');
	return [ grep {
			(!defined $method || $_->{method} eq $method)
			  && (!defined $path_re || $_->{path} =~ $path_re)
	} @$all ];
}

sub emu_fault
{
	my ($emu, %spec) = @_;
	return emu($emu, 'POST', '/_emulator/faults', \%spec);
}

# A started cluster pointed at the emulator, with the extension created in
# database postgres; extra postgresql.conf lines as arguments.
sub new_cluster
{
	my ($name, $emu, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	# UTF-8 whatever the caller's locale
	$node->init(extra => [ '--locale=C.UTF-8', '--encoding=UTF8' ]);
	my $url = $emu->{url};
	$node->append_conf('postgresql.conf', join("\n",
		"twilio_numbers.api_url = '$url'",
		"twilio_numbers.pricing_url = '$url'",
		"twilio_numbers.trunking_url = '$url'",
		"twilio_numbers.numbers_url = '$url'",
		"twilio_numbers.messaging_url = '$url'",
		"twilio_numbers.account_sid = '$ENV{TN_ACCOUNT_SID}'",
		"twilio_numbers.auth_token = '$ENV{TN_AUTH_TOKEN}'",
		"twilio_numbers.retry_backoff_ms = 50",
		@conf) . "\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION twilio_numbers');
	return $node;
}

# new_cluster with twilio_numbers preloaded (the background worker runs).
sub new_node
{
	my ($name, $emu, @conf) = @_;
	return new_cluster($name, $emu, "shared_preload_libraries = 'twilio_numbers'", @conf);
}

# The phone numbers the emulator says the account owns, sorted.
sub emu_owned
{
	my ($emu) = @_;
	return join(',', map { $_->{phone_number} } @{ emu($emu, 'GET', '/_emulator/state')->{numbers} });
}

# Wait until the worker has nothing pending and no intent is unsettled.
sub wait_queue_drained
{
	my ($node) = @_;
	return $node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue WHERE status = 'pending' "
		  . "AND NOT coalesce(payload ? 'watching_until', false)) "
		  . "AND NOT EXISTS (SELECT 1 FROM twilio_numbers.inflight)");
}

# 't' when twilio_numbers.integrity is empty (every balance the sum of its
# ledger and within its limit, one charge per number and period, a paid period for
# every active number); otherwise the violations, so that a failure says which.
sub money_conserved
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(format('%s (account %s, number %s): %s', violation, account_id, "
		  . "number_id, detail), '; '), 't') FROM twilio_numbers.integrity");
}

# The live (not released) phone numbers of owned_numbers, sorted, as emu_owned.
sub live_numbers
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(phone_number, ',' ORDER BY phone_number), '') "
		  . "FROM twilio_numbers.owned_numbers WHERE status <> 'released'");
}

# How many (number, period) pairs were charged more than once.
sub double_charges
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT number_id FROM twilio_numbers.ledger WHERE kind = 'monthly_fee' "
		  . "GROUP BY number_id, period_start HAVING count(*) > 1) d");
}

sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT pid FROM twilio_numbers.worker_status');
}

# After the worker (old_pid) was killed: wait for the crash restart, i.e. a
# new worker is registered and cond (SQL over worker_status) holds.
sub wait_restarted
{
	my ($node, $old_pid, $cond) = @_;
	$cond //= 'true';
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		# while the server restarts psql may die under IPC::Run ("Broken
		# pipe"): that is one more try, not the end of the test
		my $ok = eval {
			$node->poll_query_until('postgres',
				"SELECT pid <> $old_pid AND ($cond) FROM twilio_numbers.worker_status");
		};
		return if $ok;
		usleep(200_000);
	}
	die "no restart";
}

# A new funded account; returns its id.
sub new_account
{
	my ($node, $name, $deposit) = @_;
	my $id = $node->safe_psql('postgres',
		"INSERT INTO twilio_numbers.accounts (name) VALUES ('$name') RETURNING account_id");
	$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_deposit($id, $deposit)") if $deposit;
	return $id;
}

# Call Twilio's API on the emulator as another system would (the test API
# key): twilio_api($emu, 'POST', '/2010-04-01/...', { Field => ... }) ->
# { status, body (decoded JSON or undef) }.
sub twilio_api
{
	my ($emu, $method, $path, $form) = @_;
	my $auth = "$ENV{TN_API_KEY}:$ENV{TN_API_SECRET}";
	(my $base = $emu->{url}) =~ s{://}{://$auth\@};
	my $res = $method eq 'POST'
	  ? $http->post_form("$base$path", $form // {})
	  : $http->request($method, "$base$path");
	my $body = length($res->{content} // '') && $res->{content} =~ /^\s*[\{\[]/
	  ? $json->decode($res->{content}) : undef;
	return { status => $res->{status}, body => $body };
}

# Buy a number directly at Twilio, outside the extension (the reseller's own
# numbers, another system's); returns its SID.
sub buy_elsewhere
{
	my ($emu, $phone, %fields) = @_;
	my $account = delete $fields{account} // $ENV{TN_ACCOUNT_SID};
	my $res = twilio_api($emu, 'POST', "/2010-04-01/Accounts/$account/IncomingPhoneNumbers.json",
		{ PhoneNumber => $phone, %fields });
	die "buying $phone elsewhere: $res->{status}" unless $res->{status} == 201;
	return $res->{body}{sid};
}

# Poll a Perl condition until it holds or the default timeout passes.
sub wait_until
{
	my ($cond, $what) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	die "timed out waiting for $what";
}

# The most requests of a request-log list in flight at once.  Each entry's
# interval is narrowed to [started_at + 1 ms, started_at + ms]: started_at is
# rounded down to the millisecond, so the narrowed interval lies within the
# real one and the count can only err low by requests that overlapped for
# under a millisecond, never high.  (Entries without a reply are left out.)
sub max_overlap
{
	my ($log) = @_;
	my @events;
	for my $e (@$log)
	{
		next unless defined $e->{ms};
		my ($y, $mo, $d, $h, $mi, $s) = $e->{started_at} =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):([\d.]+)Z$/
		  or die "started_at $e->{started_at}";
		my $t = (Time::Local::timegm(0, $mi, $h, $d, $mo - 1, $y) + $s) * 1000;
		push @events, [ $t + 1, 1 ], [ $t + $e->{ms}, -1 ];
	}
	my ($now, $max) = (0, 0);
	for my $ev (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @events)
	{
		$now += $ev->[1];
		$max = $now if $now > $max;
	}
	return $max;
}

# Have the emulator put count US local numbers into a Twilio account (the
# main one unless given) as if each had been bought through its API
# (POST /_emulator/numbers); returns its answer.
sub emu_add_numbers
{
	my ($emu, $count, $account_sid) = @_;
	return emu($emu, 'POST', '/_emulator/numbers',
		{ count => $count + 0, ($account_sid ? (account_sid => $account_sid) : ()) });
}

# Adopt for a customer account every number of a Twilio account's listing
# that no live row owns: what numbers_adopt writes after its look-up
# (_adopt_record, the first period paid), fed one page of the listing at a
# time instead of a look-up per number (a test's set-up of a big account).
# Returns how many it adopted.
sub adopt_listed
{
	my ($node, $emu, $account_id, $account_sid) = @_;
	$account_sid //= $ENV{TN_ACCOUNT_SID};
	my $path = "/2010-04-01/Accounts/$account_sid/IncomingPhoneNumbers.json?PageSize=1000";
	my $adopted = 0;
	while ($path)
	{
		my $res = twilio_api($emu, 'GET', $path);
		die "listing $path: $res->{status}" unless $res->{status} == 200;
		my $page = $json->encode($res->{body}{incoming_phone_numbers});
		$adopted += $node->safe_psql('postgres', qq{
SELECT count(twilio_numbers._adopt_record($account_id, e, 'local', 'US', 1.00, 'USD', true))
FROM jsonb_array_elements(\$page\$$page\$page\$::jsonb) e
WHERE NOT EXISTS (SELECT 1 FROM twilio_numbers.live_numbers l WHERE l.twilio_sid = e->>'sid')});
		$path = $res->{body}{next_page_uri};
	}
	return $adopted;
}

1;
