# ALTER EXTENSION ... UPDATE from 0.1 gives exactly a fresh install, and
# pg_dump/pg_restore keeps every account, ledger entry and owned number, with
# the balances still equal to the ledger.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TwilioNumbersTest;

my $emu = start_emulator();
my $node = new_node('upgrade', $emu, "twilio_numbers.worker_interval_ms = 100");

# the objects of the extension, as text, in a stable order (by their
# descriptions: an install and an update create them in different orders)
my $objects = q{
SELECT string_agg(pg_describe_object(classid, objid, objsubid), E'\n'
                  ORDER BY pg_describe_object(classid, objid, objsubid))
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'twilio_numbers')};
my $definitions = q{
SELECT md5(string_agg(pg_get_functiondef(p.oid), '' ORDER BY p.oid::regprocedure::text))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'twilio_numbers' AND p.prokind = 'f'};

# ... and its whole schema as pg_dump --binary-upgrade writes it (it dumps an
# extension's members): every column in its place, constraints, indexes,
# triggers, views, comments, privileges; then the tables whose data pg_dump
# keeps.  OIDs (and what pg_upgrade would carry over with them), transaction
# ids and the dump's random key are left out.
sub schema_of
{
	my ($db) = @_;
	my ($dump, $err) =
	  run_command([ 'pg_dump', '--binary-upgrade', '--schema-only', '-d', $node->connstr($db) ]);
	die "pg_dump $db: $err" if $err ne '';
	$dump =~ s/^\\(un)?restrict \S+$//mg;
	$dump =~ s/^SELECT pg_catalog\.binary_upgrade_set_next_\w+\(.*\);$//mg;
	$dump =~ s/(WHERE oid = |relfrozenxid = |relminmxid = )'\d+'/$1'N'/g;
	$dump =~ s/(binary_upgrade_create_empty_extension\(.*?, ')\{[\d,]*\}'/$1\{N\}'/g;
	return $dump . "\n" . $node->safe_psql($db,
		"SELECT string_agg(c::regclass::text, ', ' ORDER BY c::regclass::text) "
		  . "FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'twilio_numbers'");
}

my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'twilio_numbers'");
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION twilio_numbers');

# every shipped version updates to exactly a fresh install of the current one
for my $from ('0.1', '0.2', '0.3')
{
	(my $db = "from_$from") =~ s/\.//g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION twilio_numbers VERSION '$from'");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'twilio_numbers'"),
		$from, "version $from installs");
	is($node->safe_psql($db, "SELECT count(*) FROM twilio_numbers.numbers_search('US', max_results => 3)"),
		'3', 'and searches');
	$node->safe_psql($db, 'ALTER EXTENSION twilio_numbers UPDATE');
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'twilio_numbers'"),
		$current, "ALTER EXTENSION UPDATE from $from reaches $current");
	is($node->safe_psql($db, $objects), $node->safe_psql('fresh', $objects),
		'the updated extension has exactly the objects of a fresh install');
	is($node->safe_psql($db, $definitions), $node->safe_psql('fresh', $definitions),
		'and the same function definitions');
	is(schema_of($db), schema_of('fresh'), 'and the same schema, as pg_dump writes it');
	my (undef, undef, $again) = $node->psql($db, 'ALTER EXTENSION twilio_numbers UPDATE');
	like($again, qr/version "\Q$current\E" of extension "twilio_numbers" is already installed/,
		'updating again is a no-op');
}

# ---- pg_dump keeps the user data (pg_extension_config_dump) ----
my $acct = new_account($node, 'Dumped Ltd', 50);
$node->safe_psql('postgres',
	"INSERT INTO twilio_numbers.price_list VALUES ('US', 'toll_free', 1.00, 3.00, 'USD')");
$node->safe_psql('postgres',
	"SELECT twilio_numbers.numbers_purchase($acct, ARRAY['+17025550100', '+17025550101'])");
$node->safe_psql('postgres', "SELECT twilio_numbers.numbers_release($acct, '+17025550101')");
ok(wait_queue_drained($node), 'the release went through');

my $snapshot = q{
SELECT (SELECT string_agg(format('%s %s %s %s', account_id, name, balance, credit_limit), '; ' ORDER BY account_id)
        FROM twilio_numbers.accounts) || ' | ' ||
       (SELECT string_agg(format('%s %s %s %s', entry_id, account_id, amount, kind), '; ' ORDER BY entry_id)
        FROM twilio_numbers.ledger) || ' | ' ||
       (SELECT string_agg(format('%s %s %s %s', number_id, phone_number, status, twilio_sid), '; ' ORDER BY number_id)
        FROM twilio_numbers.owned_numbers) || ' | ' ||
       (SELECT string_agg(format('%s %s %s', iso_country, number_type, monthly_price), '; ' ORDER BY 1)
        FROM twilio_numbers.price_list)};
my $before = $node->safe_psql('postgres', $snapshot);

my $dump = PostgreSQL::Test::Utils::tempdir() . '/db.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', $snapshot), $before,
	'accounts, ledger, owned numbers and prices come back as they were');
is($node->safe_psql('restored', "SELECT count(*) FROM twilio_numbers.accounts"), '1',
	'the dumped account is there');
is($node->safe_psql('restored', "SELECT string_agg(violation || ': ' || detail, '; ') FROM twilio_numbers.integrity"),
	'', 'no invariant is broken after the restore (balances equal the ledger)');
is($node->safe_psql('restored',
	"INSERT INTO twilio_numbers.accounts (name) VALUES ('After restore') RETURNING account_id > $acct"), 't',
	'the identity sequences continue after the dumped ids');

$node->stop;
done_testing();
