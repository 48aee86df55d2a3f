/*
 * budget.c — one budget of requests in flight to Twilio for the whole
 * cluster: every backend and background process together.
 *
 * Twilio lets an account have about 100 REST requests in flight and answers
 * the next one 429 (error 20429, not acted on).  The account is shared by
 * everything the reseller runs, so the extension keeps itself well below:
 * twilio_numbers.max_concurrent_requests slots in shared memory, one taken
 * around every transfer (http.c's perform_once, the one place a request is
 * sent), none held while a retry waits.  A process that finds every slot
 * taken sleeps on a condition variable — a wait event in pg_stat_activity,
 * ended by statement_timeout, pg_cancel_backend or a terminate like any
 * other — until a slot is free.
 *
 * The window is adaptive, like TCP's congestion window: a 429 halves the
 * number of slots the cluster uses (at most once per BUDGET_SHRINK_GUARD_MS,
 * so that one burst of 429s from requests sent together counts once), and
 * each BUDGET_GROW_MS with an answered request gives one back, up to the
 * setting.  A backend without shared memory (the library not preloaded)
 * has no budget to take: it only runs catalog calls, one at a time.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "budget.h"
#include "compat.h"
#include "settings.h"

/* a 429 within this long of the last halving is the same burst */
#define BUDGET_SHRINK_GUARD_MS	500
/* one slot given back per this long with answered requests */
#define BUDGET_GROW_MS			1000

typedef struct BudgetShared
{
	slock_t		mutex;
	int			in_flight;		/* slots taken now */
	int			window;			/* the adaptive window; 0: not shrunk (the setting) */
	int			waiting;		/* processes waiting for a slot now */
	int			peak_in_flight; /* most slots taken at once since start-up */
	TimestampTz last_change;	/* the window's last halving or growth */
	TimestampTz last_throttled_at;
	int64		requests;		/* slots ever taken */
	int64		throttled;		/* 429s */
	int64		waits;			/* acquisitions that had to wait */
	ConditionVariable freed;	/* broadcast when a slot is given back */
} BudgetShared;

static BudgetShared *budget = NULL;

/* the slots this process holds (given back by budget_release, or at exit) */
static int	holding = 0;
static bool exit_hook_set = false;

#ifdef TN_HAVE_NAMED_WAIT_EVENTS
/* Our wait event while a process waits for a slot, looked up on first use and kept. */
static uint32
budget_wait_event(void)
{
	static uint32 wait_event = 0;

	if (wait_event == 0)
		wait_event = WaitEventExtensionNew("TwilioRequestBudget");
	return wait_event;
}
#define TN_WAIT_EVENT_BUDGET budget_wait_event()
#else
#define TN_WAIT_EVENT_BUDGET PG_WAIT_EXTENSION
#endif

Size
budget_shmem_size(void)
{
	return MAXALIGN(sizeof(BudgetShared));
}

void
budget_shmem_init(void)
{
	bool		found;

	budget = ShmemInitStruct("twilio_numbers request budget", budget_shmem_size(), &found);
	if (!found)
	{
		memset(budget, 0, sizeof(BudgetShared));
		SpinLockInit(&budget->mutex);
		ConditionVariableInit(&budget->freed);
	}
}

/* The slots the cluster may use now (the caller holds the mutex). */
static int
effective_limit(void)
{
	int			limit = Max(tn_max_concurrent_requests, 1);

	return budget->window > 0 ? Min(budget->window, limit) : limit;
}

/* A process that dies holding a slot (FATAL, terminate) gives it back. */
static void
release_at_exit(int code, Datum arg)
{
	while (holding > 0)
		budget_release(BUDGET_NO_REPLY);
}

/*
 * Take a slot, waiting while every one is taken.  The wait is interruptible
 * (a cancel or a terminate raises from here, holding no new slot).
 */
void
budget_acquire(void)
{
	volatile bool counted = false;
	volatile bool taken = false;

	if (budget == NULL)
		return;
	if (!exit_hook_set)
	{
		before_shmem_exit(release_at_exit, (Datum) 0);
		exit_hook_set = true;
	}

	PG_TRY();
	{
		for (;;)
		{
			SpinLockAcquire(&budget->mutex);
			if (budget->in_flight < effective_limit())
			{
				budget->in_flight++;
				budget->requests++;
				budget->peak_in_flight = Max(budget->peak_in_flight, budget->in_flight);
				if (counted)
					budget->waiting--;
				taken = true;
			}
			else if (!counted)
			{
				budget->waiting++;
				budget->waits++;
				counted = true;
			}
			SpinLockRelease(&budget->mutex);
			if (taken)
			{
				holding++;
				break;
			}
			/* a timed sleep: a window that grows by the clock wakes nobody */
			(void) ConditionVariableTimedSleep(&budget->freed, BUDGET_GROW_MS, TN_WAIT_EVENT_BUDGET);
		}
	}
	PG_CATCH();
	{
		ConditionVariableCancelSleep();
		if (counted && !taken)
		{
			SpinLockAcquire(&budget->mutex);
			budget->waiting--;
			SpinLockRelease(&budget->mutex);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	ConditionVariableCancelSleep();
}

/*
 * Take a slot if one is free now, without waiting (a process that already
 * has requests in flight waits for its own to end instead).  Always true
 * without shared memory.
 */
bool
budget_try_acquire(void)
{
	bool		taken = false;

	if (budget == NULL)
		return true;
	if (!exit_hook_set)
	{
		before_shmem_exit(release_at_exit, (Datum) 0);
		exit_hook_set = true;
	}
	SpinLockAcquire(&budget->mutex);
	if (budget->in_flight < effective_limit())
	{
		budget->in_flight++;
		budget->requests++;
		budget->peak_in_flight = Max(budget->peak_in_flight, budget->in_flight);
		taken = true;
	}
	SpinLockRelease(&budget->mutex);
	if (taken)
		holding++;
	return taken;
}

/*
 * Give the slot back, with what came of the request: a 429 halves the
 * window, an answer lets it grow back by one per BUDGET_GROW_MS.  Never
 * raises (called right after a transfer, and at exit).
 */
void
budget_release(BudgetOutcome outcome)
{
	TimestampTz now;

	if (budget == NULL || holding == 0)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&budget->mutex);
	budget->in_flight--;
	if (outcome == BUDGET_THROTTLED)
	{
		budget->throttled++;
		budget->last_throttled_at = now;
		if (budget->window == 0 ||
			TimestampDifferenceExceeds(budget->last_change, now, BUDGET_SHRINK_GUARD_MS))
		{
			budget->window = Max(1, effective_limit() / 2);
			budget->last_change = now;
		}
	}
	else if (outcome == BUDGET_ANSWERED && budget->window > 0 &&
			 TimestampDifferenceExceeds(budget->last_change, now, BUDGET_GROW_MS))
	{
		budget->window++;
		budget->last_change = now;
		if (budget->window >= tn_max_concurrent_requests)
			budget->window = 0;
	}
	SpinLockRelease(&budget->mutex);
	holding--;
	ConditionVariableBroadcast(&budget->freed);
}

PG_FUNCTION_INFO_V1(tn_request_budget);

/* request_budget_info(): the budget as it stands (one row). */
Datum
tn_request_budget(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[9];
	bool		nulls[9] = {false};
	BudgetShared copy;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (budget == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("twilio_numbers must be loaded via shared_preload_libraries to share a request budget"),
				 errhint("Add twilio_numbers to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")));
	SpinLockAcquire(&budget->mutex);
	memcpy(&copy, budget, offsetof(BudgetShared, freed));
	values[1] = Int32GetDatum(effective_limit());
	SpinLockRelease(&budget->mutex);

	values[0] = Int32GetDatum(tn_max_concurrent_requests);
	values[2] = Int32GetDatum(copy.in_flight);
	values[3] = Int32GetDatum(copy.waiting);
	values[4] = Int32GetDatum(copy.peak_in_flight);
	values[5] = Int64GetDatum(copy.requests);
	values[6] = Int64GetDatum(copy.waits);
	values[7] = Int64GetDatum(copy.throttled);
	values[8] = TimestampTzGetDatum(copy.last_throttled_at);
	nulls[8] = copy.last_throttled_at == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
