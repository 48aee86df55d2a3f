/*
 * xact.c — the extension's transaction callbacks.
 *
 * They do no I/O and write no table: at the end of a transaction they mark
 * this backend's intents ended (shmem.c) and wake the worker, which then
 * settles them in its own transactions.  A transaction that queued work
 * (a release) wakes the worker at COMMIT so the work starts at once.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "twilio_numbers.h"

static bool callbacks_registered = false;
static int *my_slots = NULL;
static int	n_my_slots = 0;
static int	cap_my_slots = 0;
static bool wake_at_commit = false;

static void
xact_callback(XactEvent event, void *arg)
{
	bool		committed;
	bool		work;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (n_my_slots > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that bought or changed Twilio numbers"),
						 errhint("Twilio's side of a purchase or change is settled when the transaction ends; "
								 "two-phase commit would leave it pending indefinitely.")));
			return;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			committed = true;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			committed = false;
			break;
		default:
			return;
	}

	work = tn_intents_end(my_slots, n_my_slots, committed);
	if (work || (committed && wake_at_commit))
		tn_wake_worker();
	n_my_slots = 0;
	wake_at_commit = false;
}

static void
ensure_registered(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(xact_callback, NULL);
	callbacks_registered = true;
}

/*
 * Make room to track n more intents, before they are taken: tracking must
 * not fail (out of memory) between taking a slot and tracking it, or the
 * slot would never be ended.
 */
void
tn_xact_reserve(int n)
{
	ensure_registered();
	if (n_my_slots + n > cap_my_slots)
	{
		int			newcap = Max(cap_my_slots * 2, n_my_slots + n + 16);

		my_slots = my_slots ? repalloc(my_slots, sizeof(int) * newcap)
			: MemoryContextAlloc(TopMemoryContext, sizeof(int) * newcap);
		cap_my_slots = newcap;
	}
}

/* Mark the intent in slot as this transaction's, ended at its end. */
void
tn_xact_track_intent(int slot)
{
	Assert(n_my_slots < cap_my_slots);
	my_slots[n_my_slots++] = slot;
}

/* Wake the worker when this transaction commits (work is queued). */
void
tn_xact_wake_worker_at_commit(void)
{
	ensure_registered();
	wake_at_commit = true;
}
