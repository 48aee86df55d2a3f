/*
 * xact.c — the extension's transaction callbacks.
 *
 * They do no I/O and write no table: at the end of a transaction they mark
 * this backend's intents ended (shmem.c), which wakes the attempt recorder
 * that settles them in its own transactions (recorder.c).  A change that
 * committed, or whose request never left, needs nothing more and is freed at
 * once.  A transaction that queued work (a release) wakes the worker at
 * COMMIT so the work starts at once.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/memutils.h"

#include "xact.h"
#include "intents.h"
#include "shmem.h"

/* This transaction's intents: their slots, the subtransaction each
 * belongs to now, and whether that subtransaction (or one below) rolled back. */
typedef struct TrackedIntent
{
	int			slot;
	SubTransactionId subxid;
	bool		creation;		/* a creation: over at its savepoint's rollback */
	bool		rolled_back;
} TrackedIntent;

static bool callbacks_registered = false;
static TrackedIntent *mine = NULL;
static int	n_mine = 0;
static int	cap_mine = 0;
static bool wake_at_commit = false;

static void
xact_callback(XactEvent event, void *arg)
{
	bool		committed;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (n_mine > 0)
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

	for (int i = 0; i < n_mine; i++)
		intent_end(mine[i].slot, committed && !mine[i].rolled_back);
	if (committed && wake_at_commit)
		shmem_wake_worker();
	n_mine = 0;
	wake_at_commit = false;
}

/*
 * Subtransactions: a creation (a purchase, a hosted order) made inside a
 * savepoint (or a PL/pgSQL exception block) that rolls back is over at once
 * — its funds hold and slot are released, and the worker undoes what it may
 * have left at Twilio — even if the transaction goes on.  A change of a
 * number is re-synced only when the whole transaction is over: the row it
 * must be put back in step with may be one this transaction bought.  An
 * intent whose savepoint is released now belongs to the parent.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			kept = 0;

	for (int i = 0; i < n_mine; i++)
	{
		if (mine[i].subxid == mySubid)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB && mine[i].creation)
			{
				intent_end(mine[i].slot, false);
				continue;		/* no longer this transaction's */
			}
			if (event == SUBXACT_EVENT_ABORT_SUB)
				mine[i].rolled_back = true;
			if (event == SUBXACT_EVENT_ABORT_SUB || event == SUBXACT_EVENT_COMMIT_SUB)
				mine[i].subxid = parentSubid;
		}
		mine[kept++] = mine[i];
	}
	n_mine = kept;
}

static void
ensure_registered(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	callbacks_registered = true;
}

/*
 * Make room to track n more intents, before they are taken: tracking must
 * not fail (out of memory) between taking a slot and tracking it, or the
 * slot would never be ended.
 */
void
xact_reserve(int n)
{
	ensure_registered();
	if (n_mine + n > cap_mine)
	{
		int			newcap = Max(cap_mine * 2, n_mine + n + 16);

		mine = mine ? repalloc(mine, sizeof(TrackedIntent) * newcap)
			: MemoryContextAlloc(TopMemoryContext, sizeof(TrackedIntent) * newcap);
		cap_mine = newcap;
	}
}

/* Mark the intent in slot as this transaction's, ended at its end. */
void
xact_track_intent(int slot, bool creation)
{
	Assert(n_mine < cap_mine);
	mine[n_mine].slot = slot;
	mine[n_mine].subxid = GetCurrentSubTransactionId();
	mine[n_mine].creation = creation;
	mine[n_mine].rolled_back = false;
	n_mine++;
}

/*
 * The other SIDs (intent_set_sid) of this transaction's changes of kind to
 * the number whose savepoints rolled back: what Twilio may still hold until
 * the transaction ends and they are re-synced (a Messaging Service the
 * number was added to, say).
 */
List *
xact_rolled_back_others(int kind, int64 number_id)
{
	List	   *others = NIL;

	for (int i = 0; i < n_mine; i++)
	{
		Intent		it;

		if (!mine[i].rolled_back)
			continue;
		intent_get(mine[i].slot, &it);
		if (it.kind == kind && it.number_id == number_id && it.twilio_account_sid[0])
			others = lappend(others, pstrdup(it.twilio_account_sid));
	}
	return others;
}

/* Wake the worker when this transaction commits (work is queued). */
void
xact_wake_worker_at_commit(void)
{
	ensure_registered();
	wake_at_commit = true;
}

PG_FUNCTION_INFO_V1(tn_wake_worker_at_commit_sql);

/* _wake_worker_at_commit(): SQL that queued work wakes the worker at COMMIT. */
Datum
tn_wake_worker_at_commit_sql(PG_FUNCTION_ARGS)
{
	xact_wake_worker_at_commit();
	PG_RETURN_VOID();
}
