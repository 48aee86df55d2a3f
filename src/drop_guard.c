/*
 * drop_guard.c — DROP EXTENSION twilio_numbers refuses to lose money.
 *
 * Dropping the extension deletes the accounts, their balances and ledger,
 * the owned-number rows and the queue — and leaves every number rented at
 * Twilio with nothing left to release it.  A ProcessUtility hook refuses
 * DROP EXTENSION twilio_numbers (and DROP SCHEMA twilio_numbers CASCADE,
 * which drops it too) while live numbers or ledger entries exist, saying
 * what would be lost and how to export or release first; a superuser who
 * means it sets twilio_numbers.allow_drop = on.  After a drop the schema the
 * extension created goes too, with its grants, when nothing else is in it.
 * The background worker notices the extension is gone and waits (worker.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "drop_guard.h"
#include "errcodes.h"
#include "store.h"

static bool allow_drop = false;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* Does this DROP name the extension (or its schema, with CASCADE)? */
static bool
drops_extension(Node *parsetree)
{
	DropStmt   *drop;
	ListCell   *lc;

	if (!IsA(parsetree, DropStmt))
		return false;
	drop = (DropStmt *) parsetree;
	if (drop->removeType != OBJECT_EXTENSION &&
		!(drop->removeType == OBJECT_SCHEMA && drop->behavior == DROP_CASCADE))
		return false;
	foreach(lc, drop->objects)
	{
		Node	   *name = lfirst(lc);

		if (IsA(name, String) && strcmp(strVal(name), TN_SCHEMA) == 0)
			return true;
	}
	return false;
}

/* Refuse while the extension holds live numbers or ledger entries. */
static void
check_drop(void)
{
	int64		live = 0;
	int64		entries = 0;
	int64		pending = 0;
	char	   *balance = NULL;

	if (!OidIsValid(get_extension_oid(TN_SCHEMA, true)) || allow_drop)
		return;
	SPI_connect();
	store_drop_guard_counts(&live, &entries, &pending, &balance);
	SPI_finish();
	if (live == 0 && entries == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("extension twilio_numbers holds " INT64_FORMAT " live number%s and " INT64_FORMAT " ledger entr%s",
					live, live == 1 ? "" : "s", entries, entries == 1 ? "y" : "ies"),
			 errdetail("Dropping it deletes the customer accounts (balances totalling %s), the ledger, the "
					   "owned-number rows and " INT64_FORMAT " queued job%s, and leaves the " INT64_FORMAT
					   " number%s rented at Twilio with nothing to release %s.",
					   balance ? balance : "?", pending, pending == 1 ? "" : "s", live, live == 1 ? "" : "s",
					   live == 1 ? "it" : "them"),
			 errhint("Export first (pg_dump --schema=twilio_numbers), release the numbers with numbers_release() "
					 "and let the queue drain; or, if you mean it, SET twilio_numbers.allow_drop = on "
					 "(a superuser) and drop again.")));
}

/* After the extension is gone: its schema too, with its grants, if empty. */
static void
drop_empty_schema(void)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	if (!OidIsValid(get_namespace_oid(TN_SCHEMA, true)))
		return;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		SPI_connect();
		store_drop_schema();
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		ereport(NOTICE,
				(errmsg("schema twilio_numbers is kept: it holds objects the extension did not create")));
	}
	PG_END_TRY();
}

static void
guard_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	bool		dropping = drops_extension(pstmt->utilityStmt);

	if (dropping)
		check_drop();
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	if (dropping && ((DropStmt *) pstmt->utilityStmt)->removeType == OBJECT_EXTENSION &&
		!OidIsValid(get_extension_oid(TN_SCHEMA, true)))
		drop_empty_schema();
}

/* The setting and the hook (module.c calls it). */
void
drop_guard_init(void)
{
	DefineCustomBoolVariable("twilio_numbers.allow_drop",
							 "Lets DROP EXTENSION twilio_numbers drop live numbers and the ledger.",
							 "Off: the drop is refused while the extension holds live numbers or ledger entries.",
							 &allow_drop, false, PGC_SUSET, 0, NULL, NULL, NULL);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = guard_process_utility;
}
