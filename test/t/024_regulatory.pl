# Regulated numbers and subaccounts: a transfer of a German number to a
# customer in another Twilio subaccount clones its bundle and copies its
# address there first (the request log shows the order), and the move sends
# both; a transfer rolled back is moved back by the worker with the numbers'
# own address and bundle, and leaves nothing cloned in use; a clone Twilio
# refuses stops a transfer before the number moves.  A bundle's
# status change at Twilio reaches the bundles table, its history and a
# NOTIFY through the worker.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('regulatory', $emu,
	"twilio_numbers.worker_interval_ms = 100",
	"twilio_numbers.queue_retry_base_ms = 100",
	"twilio_numbers.hosted_poll_ms = 100",
	"twilio_numbers.hosted_poll_max_ms = 300");
my $main = $ENV{TN_ACCOUNT_SID};
my $q = sub { $node->safe_psql('postgres', $_[0]) };

my $seller = new_account($node, 'Muster GmbH', 100);
my $buyer = new_account($node, 'Muster Vertrieb GmbH', 100);
my $other = new_account($node, 'Muster Nord GmbH', 100);
my $sub = twilio_api($emu, 'POST', '/2010-04-01/Accounts.json', { FriendlyName => 'Vertrieb' })->{body}{sid};
my $sub2 = twilio_api($emu, 'POST', '/2010-04-01/Accounts.json', { FriendlyName => 'Nord' })->{body}{sid};
$q->("SELECT twilio_numbers.numbers_map_account($buyer, '$sub')");
$q->("SELECT twilio_numbers.numbers_map_account($other, '$sub2')");

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN twilio_numbers_bundle');

# the seller's address and approved bundle, and two German local numbers bought with them
my $address = $q->("SELECT address_sid FROM twilio_numbers.numbers_address_create($seller, 'Muster GmbH', "
	  . "'Friedrichstrasse 100', 'Berlin', 'BE', '10117', 'DE')");
like($address, qr/^AD[0-9a-f]{32}$/, 'an address is created');
my $bundle = emu($emu, 'POST', '/_emulator/bundles', { iso_country => 'DE', number_type => 'local' })->{sid};
is($q->("SELECT status FROM twilio_numbers.numbers_bundle_register($seller, '$bundle')"), 'twilio-approved',
	'the approved bundle is registered');
my @numbers = split /\n/, $q->("SELECT phone_number FROM twilio_numbers.numbers_search('DE', number_type => 'local', "
	  . "max_results => 2) ORDER BY 1");
for my $n (@numbers)
{
	is($q->("SELECT bundle_sid FROM twilio_numbers.numbers_purchase($seller, '$n', address_sid => '$address')"),
		$bundle, "$n is bought with the seller's bundle");
}

# ---- the transfer: clone and copy first, then the move ----
emu($emu, 'DELETE', '/_emulator/requests');
$q->("SELECT twilio_numbers.numbers_transfer('$numbers[0]', $seller, $buyer)");
my $log = emu_requests($emu, 'POST');
my @steps = map { $_->{path} } @$log;
my ($clone_at) = grep { $steps[$_] =~ m{^/v2/RegulatoryCompliance/Bundles/$bundle/Clones$} } 0 .. $#steps;
my ($copy_at) = grep { $steps[$_] eq "/2010-04-01/Accounts/$sub/Addresses.json" } 0 .. $#steps;
my ($move_at) = grep { $steps[$_] =~ m{^/2010-04-01/Accounts/$main/IncomingPhoneNumbers/PN} } 0 .. $#steps;
ok(defined $clone_at && defined $copy_at && defined $move_at, 'the bundle is cloned, the address copied, the number moved')
  or diag explain \@steps;
ok($clone_at < $move_at && $copy_at < $move_at, 'both before the move');
is(scalar(@steps), 3, 'three POSTs and no more') or diag explain \@steps;
is($log->[$clone_at]{form}{TargetAccountSid}, $sub, 'the clone goes to the buyer\'s subaccount');
my $move = $log->[$move_at]{form};
is($move->{AccountSid}, $sub, 'the move names the subaccount');
my ($clone, $copy) = split /\|/, $q->("SELECT bundle_sid || '|' || address_sid FROM twilio_numbers.owned_numbers "
	  . "WHERE phone_number = '$numbers[0]' AND status = 'active'");
isnt($clone, $bundle, 'the number now has another bundle');
is($move->{BundleSid}, $clone, 'the move sends the clone');
is($move->{AddressSid}, $copy, 'and the copy of the address');
is($q->("SELECT account_id || ' ' || twilio_account_sid || ' ' || status || ' ' || cloned_from FROM twilio_numbers.bundles "
	  . "WHERE bundle_sid = '$clone'"), "$buyer $sub twilio-approved $bundle", 'the clone is the buyer\'s, registered');
is($q->("SELECT account_id || ' ' || twilio_account_sid || ' ' || copied_from || ' ' || city FROM twilio_numbers.addresses "
	  . "WHERE address_sid = '$copy'"), "$buyer $sub $address Berlin", 'the copy is the buyer\'s, recorded');
my $state = emu($emu, 'GET', '/_emulator/state');
my ($at) = grep { $_->{phone_number} eq $numbers[0] } @{ $state->{numbers} };
is("$at->{account_sid} $at->{address_sid} $at->{bundle_sid}", "$sub $copy $clone",
	'Twilio has the number in the subaccount with the clone and the copy');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT twilio_numbers.numbers_address_delete($buyer, '$copy')");
like($err, qr/is in use/, 'the copy cannot be deleted while the number depends on it');

# ---- a transfer rolled back: moved back with its own address and bundle ----
emu($emu, 'DELETE', '/_emulator/requests');
$q->("BEGIN; SELECT twilio_numbers.numbers_transfer('$numbers[1]', $seller, $other); ROLLBACK;");
my @posted = map { $_->{path} } @{ emu_requests($emu, 'POST') };
ok((grep { m{/Clones$} } @posted) && (grep { $_ eq "/2010-04-01/Accounts/$sub2/Addresses.json" } @posted),
	'the rolled-back transfer had cloned and copied first') or diag explain \@posted;
wait_queue_drained($node);
$state = emu($emu, 'GET', '/_emulator/state');
($at) = grep { $_->{phone_number} eq $numbers[1] } @{ $state->{numbers} };
is("$at->{account_sid} $at->{address_sid} $at->{bundle_sid}", "$main $address $bundle",
	'the worker moved it back, with its own address and bundle');
is(scalar(grep { $_->{account_sid} eq $sub2 } @{ $state->{numbers} }), 0, 'nothing of ours is in the other subaccount');
is($q->("SELECT count(*) FROM twilio_numbers.bundles WHERE account_id = $other") . ' '
	  . $q->("SELECT count(*) FROM twilio_numbers.addresses WHERE account_id = $other"), '0 0',
	'no bundle or address is recorded for the customer the transfer did not reach');
is($q->("SELECT account_id || ' ' || address_sid || ' ' || bundle_sid FROM twilio_numbers.owned_numbers "
	  . "WHERE phone_number = '$numbers[1]' AND status = 'active'"), "$seller $address $bundle", 'the row is as it was');

# ---- a clone Twilio refuses stops the transfer before the number moves ----
emu($emu, 'POST', "/_emulator/bundles/$bundle", { status => 'twilio-rejected' });
emu($emu, 'DELETE', '/_emulator/requests');
($rc, $out, $err) = $node->psql('postgres', "SELECT twilio_numbers.numbers_transfer('$numbers[1]', $seller, $other)");
like($err, qr/Twilio refused the request.*only an approved bundle can be cloned/s, 'Twilio refuses to clone a rejected bundle');
@posted = map { $_->{path} } @{ emu_requests($emu, 'POST') };
is_deeply(\@posted, ["/v2/RegulatoryCompliance/Bundles/$bundle/Clones"], 'the clone was the only request: nothing moved');
$state = emu($emu, 'GET', '/_emulator/state');
($at) = grep { $_->{phone_number} eq $numbers[1] } @{ $state->{numbers} };
is($at->{account_sid}, $main, 'the number stays where it was');
is($q->("SELECT account_id FROM twilio_numbers.owned_numbers WHERE phone_number = '$numbers[1]' AND status = 'active'"),
	$seller, 'and so does its row');

# ---- a bundle under review: the worker follows it to the table and a NOTIFY ----
my $review = emu($emu, 'POST', '/_emulator/bundles',
	{ iso_country => 'AU', number_type => 'mobile', end_user_type => 'individual', status => 'pending-review' })->{sid};
is($q->("SELECT status FROM twilio_numbers.numbers_bundle_register($seller, '$review')"), 'pending-review',
	'a bundle under review is registered');
for my $status ('in-review', 'twilio-approved')
{
	emu($emu, 'POST', "/_emulator/bundles/$review", { status => $status });
	ok($node->poll_query_until('postgres',
		"SELECT status = '$status' FROM twilio_numbers.bundles WHERE bundle_sid = '$review'"),
		"the worker records $status");
}
is($q->("SELECT string_agg(status, ',' ORDER BY seen_at) FROM twilio_numbers.bundle_history WHERE bundle_sid = '$review'"),
	'pending-review,in-review,twilio-approved', 'the history holds every status');
my $heard = '';
wait_until(sub {
	$heard .= $listener->query('SELECT 1');
	return $heard =~ /"bundle_sid" : "$review", "account_id" : $seller, "status" : "twilio-approved"/;
}, 'the notifications');
my @statuses = $heard =~ /"bundle_sid" : "$review", "account_id" : \d+, "status" : "([a-z-]+)"/g;
is(join(',', @statuses), 'pending-review,in-review,twilio-approved', 'one NOTIFY per change of status, in order');
ok($node->poll_query_until('postgres',
	"SELECT status = 'done' FROM twilio_numbers.work_queue WHERE kind = 'bundle_poll' AND payload->>'bundle_sid' = '$review'"),
	'an approved bundle is no longer followed');
is(money_conserved($node), 't', 'no invariant is broken');

$listener->quit;
done_testing();
