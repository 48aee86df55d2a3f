/*
 * incarnation.c — a copy never acts as the original.
 *
 * The incarnation table (sql/schema/incarnation.sql) holds the epoch —
 * system identifier, WAL timeline, database — of the one incarnation of
 * this database allowed to act at Twilio.  pg_dump carries it, a physical
 * copy carries it, so a restored or cloned database finds another epoch
 * than its own and is a *held copy*: functions that would change anything
 * at Twilio refuse (TN020, nothing sent), the worker runs no queued job,
 * no billing and no reconcile, and numbers_reconcile() only reports.
 * numbers_make_live() makes a copy the live incarnation; numbers_detach()
 * detaches it for good.  With twilio_numbers.follow_promotion a promoted
 * standby (same system and database, a later timeline) follows on its own.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "incarnation.h"
#include "errcodes.h"
#include "settings.h"
#include "store.h"

/* The status, asked of SQL (following a promotion when the setting says so). */
IncarnationStatus
incarnation_status(void)
{
	char	   *s;
	IncarnationStatus result = INCARNATION_HELD;

	SPI_connect();
	s = store_incarnation_status(tn_follow_promotion);
	if (s && strcmp(s, "live") == 0)
		result = INCARNATION_LIVE;
	else if (s && strcmp(s, "detached") == 0)
		result = INCARNATION_DETACHED;
	SPI_finish();
	return result;
}

/*
 * What the database was live as and what it is now, for messages
 * (palloc'd in the caller's context).
 */
const char *
incarnation_describe(void)
{
	char	   *text = NULL;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	{
		char	   *s = store_incarnation_described();

		if (s)
			text = MemoryContextStrdup(caller, s);
	}
	SPI_finish();
	return text ? text : "no live incarnation is recorded";
}

/*
 * Refuse, before any request, what would change something at Twilio in a
 * held or detached copy.
 */
void
incarnation_require_live(void)
{
	switch (incarnation_status())
	{
		case INCARNATION_LIVE:
			return;
		case INCARNATION_DETACHED:
			ereport(ERROR,
					(errcode(ERRCODE_TN_HELD_COPY),
					 errmsg("this database was detached from Twilio"),
					 errdetail("numbers_detach() detached this copy for good. Nothing was sent to Twilio."),
					 errhint("Searches, prices and reports work; numbers are bought, changed and released "
							 "only from the live database.")));
			break;
		case INCARNATION_HELD:
			ereport(ERROR,
					(errcode(ERRCODE_TN_HELD_COPY),
					 errmsg("this database is a copy held from Twilio"),
					 errdetail("The numbers here belong to the database this one was copied from: %s. "
							   "Nothing was sent to Twilio.", incarnation_describe()),
					 errhint("If this copy is now the business (the original stopped for good), a DBA runs "
							 "SELECT twilio_numbers.numbers_make_live(); for staging, SELECT "
							 "twilio_numbers.numbers_detach(). See \"Copies of the database\" in docs/operations.md.")));
			break;
	}
}

/*
 * For changes at Twilio that need no worker (an address created, changed
 * or deleted): refused in a copy, and while twilio_numbers.pause_writes is on.
 */
void
incarnation_require_writes(void)
{
	incarnation_require_live();
	if (tn_pause_writes)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("changes at Twilio are paused"),
				 errdetail("twilio_numbers.pause_writes is on. Nothing was sent to Twilio."),
				 errhint("A DBA turns twilio_numbers.pause_writes off and reloads; releases are still accepted "
						 "and wait in the queue.")));
}
