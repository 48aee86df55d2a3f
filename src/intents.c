/*
 * intents.c — in-flight intents (purchases and configuration changes not yet
 * settled), the funds they hold, and their hand-off to the attempt recorder,
 * in a shared-memory segment of their own.
 *
 * An intent is recorded before a backend asks Twilio to change something
 * inside a transaction that may still roll back.  When that transaction
 * ends, the backend's transaction callback marks the intent ended and wakes
 * the worker (memory only, no I/O); the worker then settles it against the
 * committed tables — a purchase whose row did not commit is compensated, a
 * configuration change is re-synced — and frees the slot.  Shared memory
 * dies with a crash; the worker's start-up reconcile covers that case.
 *
 * Fund holds: each purchase intent carries the amount it is about to debit,
 * so concurrent purchases on one account see each other's reservations
 * without locking the account row across their HTTP calls.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "intents.h"
#include "errcodes.h"
#include "settings.h"
#include "shmem.h"

typedef struct IntentsShared
{
	LWLock	   *lock;
	Latch	   *recorder_latch; /* NULL while no attempt recorder runs */
	int			recorder_pid;
	ConditionVariable recorded; /* broadcast when attempts are recorded */
	int			max_intents;
	Intent		intents[FLEXIBLE_ARRAY_MEMBER];
} IntentsShared;

static IntentsShared *shared = NULL;

static bool recorder_closes(const Intent *it);

Size
intents_shmem_size(void)
{
	return add_size(offsetof(IntentsShared, intents), mul_size(sizeof(Intent), tn_max_inflight));
}

void
intents_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("twilio_numbers intents", intents_shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, intents_shmem_size());
		shared->lock = &(GetNamedLWLockTranche("twilio_numbers"))[TN_LOCK_INTENTS].lock;
		shared->max_intents = tn_max_inflight;
		ConditionVariableInit(&shared->recorded);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* A copy of the intents in use (palloc'd), for monitoring; returns how many. */
int
intents_snapshot(Intent **out)
{
	int			n = 0;

	*out = NULL;
	if (shared == NULL)
		return 0;
	*out = palloc(sizeof(Intent) * shared->max_intents);
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int s = 0; s < shared->max_intents; s++)
		if (shared->intents[s].in_use)
			(*out)[n++] = shared->intents[s];
	LWLockRelease(shared->lock);
	return n;
}

/*
 * Take a free slot for an intent of this backend's transaction (the caller
 * holds the lock exclusively; on failure it is released before raising).
 */
static Intent *
take_slot(int kind, int *slot)
{
	Intent	   *it = NULL;

	for (int i = 0; i < shared->max_intents && it == NULL; i++)
		if (!shared->intents[i].in_use)
		{
			it = &shared->intents[i];
			*slot = i;
		}
	if (it == NULL)
	{
		LWLockRelease(shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many purchases and changes in flight"),
				 errhint("Raise twilio_numbers.max_inflight (now %d) and restart.", tn_max_inflight)));
	}
	{
		uint32		generation = it->generation + 1;

		memset(it, 0, sizeof(*it));
		it->generation = generation;
	}
	it->in_use = true;
	it->kind = kind;
	it->dboid = MyDatabaseId;
	it->pid = MyProcPid;
	it->xid = GetTopTransactionId();
	it->started_at = GetCurrentTimestamp();
	return it;
}

/*
 * One purchase (or hosted order) of a phone number at a time, cluster-wide:
 * a second buyer would meet the first one's number at Twilio and could not
 * tell it from its own.  The caller holds the lock exclusively; it is
 * released before raising.
 */
static void
refuse_if_being_bought(const char *phone)
{
	for (int i = 0; i < shared->max_intents; i++)
	{
		Intent	   *it = &shared->intents[i];

		if (it->in_use && !it->ended && (it->kind == INTENT_PURCHASE || it->kind == INTENT_HOSTED) &&
			strcmp(it->phone, phone) == 0)
		{
			LWLockRelease(shared->lock);
			ereport(ERROR,
					(errcode(ERRCODE_TN_NUMBER_NOT_AVAILABLE),
					 errmsg("phone number %s is being bought by another transaction", phone),
					 errdetail("Nothing was sent to Twilio."),
					 errhint("Retry when that transaction has ended; twilio_numbers.inflight shows it.")));
		}
	}
}

/*
 * Reserve funds for a purchase: record one purchase intent per number with
 * its hold, and return the holds other in-flight purchases have on the same
 * account.  The caller then reads the committed balance (with a fresh
 * snapshot) and checks; a hold released before this call belonged to a
 * transaction whose commit that snapshot sees, and one still present is
 * counted even if its debit is also visible, so the check can only err on
 * the side of refusing.
 */
int64
intents_hold(int64 account_id, int n, char **phones, const int64 *hold_cents, int *slots)
{
	int64		others = 0;

	(void) GetTopTransactionId();	/* assign it before taking the lock */

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < shared->max_intents; i++)
	{
		Intent	   *it = &shared->intents[i];

		if (it->in_use && !it->ended && it->kind == INTENT_PURCHASE &&
			it->dboid == MyDatabaseId && it->account_id == account_id)
			others += it->hold_cents;
	}
	for (int k = 0; k < n; k++)
		refuse_if_being_bought(phones[k]);
	/* room for all of them first, so that none is taken in vain */
	{
		int			free_slots = 0;

		for (int i = 0; i < shared->max_intents; i++)
			free_slots += !shared->intents[i].in_use;
		if (free_slots < n)
		{
			LWLockRelease(shared->lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("too many purchases and changes in flight"),
					 errhint("Raise twilio_numbers.max_inflight (now %d) and restart.", tn_max_inflight)));
		}
	}
	for (int k = 0; k < n; k++)
	{
		Intent	   *it = take_slot(INTENT_PURCHASE, &slots[k]);

		it->account_id = account_id;
		it->hold_cents = hold_cents[k];
		strlcpy(it->phone, phones[k], sizeof(it->phone));
	}
	LWLockRelease(shared->lock);
	return others;
}

/* What in-flight purchases hold on an account (no reservation made). */
int64
intents_held(int64 account_id)
{
	int64		held = 0;

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents; i++)
	{
		Intent	   *it = &shared->intents[i];

		if (it->in_use && !it->ended && it->kind == INTENT_PURCHASE &&
			it->dboid == MyDatabaseId && it->account_id == account_id)
			held += it->hold_cents;
	}
	LWLockRelease(shared->lock);
	return held;
}

/* Record an intent of the given kind (not yet posted). */
int
intent_begin(int kind, int64 account_id, int64 number_id, const char *phone)
{
	int			slot;
	Intent	   *it;

	(void) GetTopTransactionId();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (kind == INTENT_HOSTED)
		refuse_if_being_bought(phone);
	it = take_slot(kind, &slot);
	it->account_id = account_id;
	it->number_id = number_id;
	strlcpy(it->phone, phone, sizeof(it->phone));
	LWLockRelease(shared->lock);
	return slot;
}

/* Record a change's intent (re-synced if its change rolls back). */
int
intent_change(int kind, int64 number_id, const char *phone)
{
	int			s = intent_begin(kind, 0, number_id, phone);

	intent_set_posted(s, true);
	return s;
}

/* Change what a purchase intent holds (its exact price is now known). */
void
intent_set_hold(int slot, int64 hold_cents)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->intents[slot].hold_cents = hold_cents;
	LWLockRelease(shared->lock);
}

/* The request of this intent is about to be sent (or surely was not). */
void
intent_set_posted(int slot, bool posted)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->intents[slot].posted = posted;
	LWLockRelease(shared->lock);
}

/*
 * How many of the intent's POSTs got no reply and were not matched to what
 * they created: each may still land at Twilio until the attempt's deadline,
 * so the undo of a rolled-back creation watches for them (jobs.c).
 */
void
intent_set_unresolved(int slot, int n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->intents[slot].unresolved = (uint8) Min(Max(n, 0), 255);
	LWLockRelease(shared->lock);
}

/* Twilio answered the purchase: remember what it bought. */
void
intent_set_sid(int slot, const char *sid, const char *account_sid)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	/* a SID the recorder wrote is written again if it changes */
	if (shared->intents[slot].recorder_op == RECORDER_SID_DONE &&
		strcmp(shared->intents[slot].sid, sid ? sid : "") != 0)
		shared->intents[slot].recorder_op = RECORDER_IDLE;
	strlcpy(shared->intents[slot].sid, sid ? sid : "", sizeof(shared->intents[slot].sid));
	strlcpy(shared->intents[slot].twilio_account_sid, account_sid ? account_sid : "",
			sizeof(shared->intents[slot].twilio_account_sid));
	LWLockRelease(shared->lock);
}

/* A copy of this backend's intent in slot. */
void
intent_get(int slot, Intent *copy)
{
	LWLockAcquire(shared->lock, LW_SHARED);
	*copy = shared->intents[slot];
	LWLockRelease(shared->lock);
}

/*
 * The transaction (or savepoint) of this intent is over — from the
 * transaction callbacks: memory only.  committed: its change committed.
 * An intent with a recorded attempt, or whose change may have reached
 * Twilio and rolled back, is marked ended and the recorder woken: it closes
 * the attempt, or queues what must be undone (recorder.c); one without is
 * freed at once when it committed or its request never left.
 */
void
intent_end(int slot, bool committed)
{
	Intent	   *it;
	Latch	   *recorder = NULL;

	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	it = &shared->intents[slot];
	if (it->in_use && it->pid == MyProcPid && !it->ended)
	{
		if (it->attempt_state != ATTEMPT_RECORDED && (!it->posted || committed))
			it->in_use = false;
		else
		{
			it->ended = true;
			it->committed = committed;
			it->hold_cents = 0;
			recorder = shared->recorder_latch;
		}
	}
	LWLockRelease(shared->lock);
	if (recorder)
		SetLatch(recorder);
}

/* Copy out up to max ended intents of this database for settling. */
int
intents_ended(Intent *out, int *slots, int max)
{
	int			n = 0;

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents && n < max; i++)
	{
		Intent	   *it = &shared->intents[i];

		if (it->in_use && it->ended && it->dboid == MyDatabaseId && !recorder_closes(it))
		{
			/* (the recorder closes the others' attempts itself: ATTEMPT_CLOSE) */
			out[n] = *it;
			slots[n] = i;
			n++;
		}
	}
	LWLockRelease(shared->lock);
	return n;
}

/* The worker settled these: free their slots. */
void
intents_free(const int *slots, int n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		if (shared->intents[slots[i]].ended)
			shared->intents[slots[i]].in_use = false;
	LWLockRelease(shared->lock);
}

/* Is a purchase (or hosted order) of this number in flight anywhere? */
bool
intent_buying(const char *phone)
{
	bool		found = false;

	if (shared == NULL)
		return false;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents && !found; i++)
	{
		Intent	   *it = &shared->intents[i];

		found = it->in_use && !it->ended &&
			(it->kind == INTENT_PURCHASE || it->kind == INTENT_HOSTED) &&
			strcmp(it->phone, phone) == 0;
	}
	LWLockRelease(shared->lock);
	return found;
}

/* Does an intent other than except_slot (-1: none) know this Twilio SID? */
bool
intents_sid_in_flight(const char *sid, int except_slot)
{
	bool		found = false;

	if (shared == NULL || sid == NULL)
		return false;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents && !found; i++)
		found = i != except_slot && shared->intents[i].in_use && strcmp(shared->intents[i].sid, sid) == 0;
	LWLockRelease(shared->lock);
	return found;
}

/* Is the attempt still with a transaction, or with the worker's settling? */
bool
intents_attempt_in_flight(int64 attempt_id)
{
	bool		found = false;

	if (shared == NULL)
		return false;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents && !found; i++)
		found = shared->intents[i].in_use && shared->intents[i].attempt_id == attempt_id;
	LWLockRelease(shared->lock);
	return found;
}

/* ---- the attempt recorder -------------------------------------------------- */

void
intents_recorder_register(void)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->recorder_latch = MyLatch;
	shared->recorder_pid = MyProcPid;
	LWLockRelease(shared->lock);
}

void
intents_recorder_unregister(void)
{
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->recorder_pid == MyProcPid)
	{
		shared->recorder_latch = NULL;
		shared->recorder_pid = 0;
	}
	LWLockRelease(shared->lock);
}

/* Ask the recorder to commit an attempt row for each of these intents. */
void
intents_request_attempts(const int *slots, int n, const char *twilio_account_sid, TimestampTz deadline,
							uint16 config_mask, const char *config_md5)
{
	Latch	   *latch;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		Intent	   *it = &shared->intents[slots[i]];

		it->attempt_state = ATTEMPT_REQUESTED;
		it->deadline = deadline;
		it->config_mask = config_mask;
		strlcpy(it->config_md5, config_md5 ? config_md5 : "", sizeof(it->config_md5));
		strlcpy(it->twilio_account_sid, twilio_account_sid, sizeof(it->twilio_account_sid));
	}
	latch = shared->recorder_latch;
	LWLockRelease(shared->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * Ask the recorder to write the SIDs Twilio answered into these intents'
 * attempts (one it has written already is not asked again: a caller may
 * ask early and wait later, create.c).
 */
void
intents_request_sids(const int *slots, int n)
{
	Latch	   *latch;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		if (shared->intents[slots[i]].recorder_op != RECORDER_SID_DONE)
			shared->intents[slots[i]].recorder_op = RECORDER_SET_SID;
	latch = shared->recorder_latch;
	LWLockRelease(shared->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * Is this ended intent the recorder's to settle?  A creation whose
 * transaction committed, or whose request never left, needs no request to
 * Twilio: only its attempt closed, which the recorder does within a commit
 * of the transaction's end.  Rolled-back ones go to the worker.
 */
static bool
recorder_closes(const Intent *it)
{
	/* (a committed one with a POST that got no reply is settled: a job watches for it) */
	return it->ended && it->attempt_state == ATTEMPT_RECORDED &&
		((it->committed && it->unresolved == 0) || !it->posted);
}

/* The recorder's work (copied, up to max): attempts to open, SIDs to write, attempts to close. */
int
intents_recorder_work(AttemptRequest *out, int max)
{
	int			n = 0;

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents && n < max; i++)
	{
		Intent	   *it = &shared->intents[i];
		uint8		op = 0;

		if (!it->in_use || it->dboid != MyDatabaseId)
			continue;
		if (it->attempt_state == ATTEMPT_REQUESTED)
			op = ATTEMPT_OPEN;
		else if (recorder_closes(it))
			op = ATTEMPT_CLOSE;
		else if (it->attempt_state == ATTEMPT_RECORDED && it->recorder_op == RECORDER_SET_SID)
			op = ATTEMPT_SID;
		if (op == 0)
			continue;
		out[n].slot = i;
		out[n].generation = it->generation;
		out[n].op = op;
		out[n].attempt_id = it->attempt_id;
		out[n].committed = it->committed;
		strlcpy(out[n].sid, it->sid, sizeof(out[n].sid));
		out[n].kind = it->kind;
		out[n].pid = it->pid;
		out[n].deadline = it->deadline;
		out[n].config_mask = it->config_mask;
		strlcpy(out[n].config_md5, it->config_md5, sizeof(out[n].config_md5));
		strlcpy(out[n].phone, it->phone, sizeof(out[n].phone));
		strlcpy(out[n].twilio_account_sid, it->twilio_account_sid, sizeof(out[n].twilio_account_sid));
		n++;
	}
	LWLockRelease(shared->lock);
	return n;
}

/*
 * The recorder did this work (ids[i] = 0: it could not): tell the waiting
 * backends, and free the slots of closed attempts.  A slot freed and reused
 * meanwhile is left alone — an attempt row opened for it stays open until
 * reconcile settles it.
 */
void
intents_recorder_done(const AttemptRequest *reqs, const int64 *ids, int n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		Intent	   *it = &shared->intents[reqs[i].slot];

		if (!it->in_use || it->generation != reqs[i].generation)
			continue;
		switch (reqs[i].op)
		{
			case ATTEMPT_OPEN:
				if (it->attempt_state == ATTEMPT_REQUESTED)
				{
					it->attempt_id = ids[i];
					it->attempt_state = ids[i] ? ATTEMPT_RECORDED : ATTEMPT_FAILED;
				}
				break;
			case ATTEMPT_SID:
				if (it->recorder_op == RECORDER_SET_SID)
					it->recorder_op = ids[i] ? RECORDER_SID_DONE : RECORDER_FAILED;
				break;
			case ATTEMPT_CLOSE:
				if (ids[i])
					it->in_use = false;
				break;
		}
	}
	LWLockRelease(shared->lock);
	ConditionVariableBroadcast(&shared->recorded);
}

/*
 * Wait until the recorder has done what these intents asked of it (cancel
 * and statement_timeout interrupt the wait).  False when something failed
 * or timeout_ms passed; what still waits is then marked failed.
 */
bool
intents_wait_recorder(const int *slots, int n, long timeout_ms)
{
	TimestampTz give_up = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	bool		ok = true;

	ConditionVariablePrepareToSleep(&shared->recorded);
	for (;;)
	{
		bool		waiting = false;

		LWLockAcquire(shared->lock, LW_SHARED);
		for (int i = 0; i < n; i++)
		{
			Intent	   *it = &shared->intents[slots[i]];

			waiting |= it->attempt_state == ATTEMPT_REQUESTED || it->recorder_op == RECORDER_SET_SID;
			ok &= it->attempt_state != ATTEMPT_FAILED && it->recorder_op != RECORDER_FAILED;
		}
		LWLockRelease(shared->lock);
		if (!waiting)
			break;
		if (GetCurrentTimestamp() >= give_up)
		{
			LWLockAcquire(shared->lock, LW_EXCLUSIVE);
			for (int i = 0; i < n; i++)
			{
				Intent	   *it = &shared->intents[slots[i]];

				if (it->attempt_state == ATTEMPT_REQUESTED)
					it->attempt_state = ATTEMPT_FAILED;
				if (it->recorder_op == RECORDER_SET_SID)
					it->recorder_op = RECORDER_FAILED;
			}
			LWLockRelease(shared->lock);
			ok = false;
			break;
		}
		(void) ConditionVariableTimedSleep(&shared->recorded, 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return ok;
}
