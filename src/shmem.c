/*
 * shmem.c — the shared state between backends and the background worker:
 * in-flight intents (purchases and configuration changes not yet settled),
 * the funds they hold, and the worker's latch.
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
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "shmem.h"
#include "incarnation.h"
#include "change_kinds.h"
#include "errcodes.h"
#include "runners.h"
#include "settings.h"

typedef struct TnShared
{
	LWLock	   *lock;
	Latch	   *worker_latch;	/* NULL while no worker runs */
	int			worker_pid;
	Latch	   *recorder_latch; /* NULL while no attempt recorder runs */
	int			recorder_pid;
	ConditionVariable recorded; /* broadcast when attempts are recorded */
	WorkerStats stats;
	int			max_intents;
	Intent		intents[FLEXIBLE_ARRAY_MEMBER];
} TnShared;

static TnShared *shared = NULL;

static bool recorder_closes(const Intent *it);

Size
shmem_size(void)
{
	return add_size(offsetof(TnShared, intents), mul_size(sizeof(Intent), tn_max_inflight));
}

void
shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("twilio_numbers shared state", shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, shmem_size());
		shared->lock = &(GetNamedLWLockTranche("twilio_numbers"))->lock;
		shared->max_intents = tn_max_inflight;
		ConditionVariableInit(&shared->recorded);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Functions that change numbers need the worker (it settles what their
 * transactions leave at Twilio) and a transaction that can commit: they
 * refuse clearly, before any request, when either is missing.
 */
static void require_worker(bool queues_only);

void
shmem_require_worker(void)
{
	require_worker(false);
}

/*
 * The checks; queues_only: the caller only queues work for the worker
 * (numbers_release), which twilio_numbers.pause_writes lets through — its
 * job waits for the pause to end.
 */
static void
require_worker(bool queues_only)
{
	/* a backend's database never changes, nor does tn_database (postmaster) */
	static bool database_checked = false;
	char	   *dbname;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("numbers cannot be bought, changed or released on a standby server"),
				 errdetail("Nothing was sent to Twilio."),
				 errhint("Run it on the primary server.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("numbers cannot be bought, changed or released in a read-only transaction"),
				 errdetail("Nothing was sent to Twilio."),
				 errhint("Run it in a read-write transaction.")));

	if (!tn_preloaded || shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("twilio_numbers must be loaded via shared_preload_libraries to buy, change or release numbers"),
				 errhint("Add twilio_numbers to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")));
	if (!database_checked)
	{
		dbname = get_database_name(MyDatabaseId);
		if (dbname == NULL || strcmp(dbname, tn_database) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("numbers can only be bought, changed or released in database \"%s\"", tn_database),
					 errhint("twilio_numbers.database names the database whose background worker "
							 "settles Twilio calls; it is \"%s\" here.", tn_database)));
		database_checked = true;
	}
	/* a copy of the database never acts as the original */
	incarnation_require_live();
	if (tn_pause_writes && !queues_only)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("changes at Twilio are paused"),
				 errdetail("twilio_numbers.pause_writes is on. Nothing was sent to Twilio."),
				 errhint("A DBA turns twilio_numbers.pause_writes off and reloads; releases are still accepted "
						 "and wait in the queue.")));
}

/* ---- the worker's latch -------------------------------------------------- */

void
shmem_worker_register(void)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->worker_latch = MyLatch;
	shared->worker_pid = MyProcPid;
	shared->stats.started_at = GetCurrentTimestamp();
	shared->stats.restarts++;
	LWLockRelease(shared->lock);
}

/* The worker reports what it did (see worker_status). */
void
shmem_worker_note(int what, int64 count, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	switch (what)
	{
		case WORKER_NOTE_RECONCILE:
			shared->stats.last_reconcile_at = now;
			shared->stats.last_reconcile_findings = count;
			break;
		case WORKER_NOTE_JOB_DONE:
			shared->stats.jobs_done += count;
			break;
		case WORKER_NOTE_BILLING:
			shared->stats.last_billing_at = now;
			break;
		case WORKER_NOTE_JOB_FAILED:
		case WORKER_NOTE_ERROR:
			break;
	}
	if (error)
	{
		shared->stats.last_error_at = now;
		strlcpy(shared->stats.last_error, error, sizeof(shared->stats.last_error));
	}
	LWLockRelease(shared->lock);
}

void
shmem_worker_unregister(void)
{
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->worker_pid == MyProcPid)
	{
		shared->worker_latch = NULL;
		shared->worker_pid = 0;
	}
	LWLockRelease(shared->lock);
}

/* Wake the worker and the queue runners; safe to call from a transaction callback. */
void
shmem_wake_worker(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return;
	/* a stale pointer at worst wakes some other process: harmless */
	latch = shared->worker_latch;
	if (latch)
		SetLatch(latch);
	runners_wake();
}

/* ---- intents ------------------------------------------------------------- */

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
shmem_recorder_register(void)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->recorder_latch = MyLatch;
	shared->recorder_pid = MyProcPid;
	LWLockRelease(shared->lock);
}

void
shmem_recorder_unregister(void)
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

/* Ask the recorder to write the SIDs Twilio answered into these intents' attempts. */
void
intents_request_sids(const int *slots, int n)
{
	Latch	   *latch;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
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
					it->recorder_op = ids[i] ? RECORDER_IDLE : RECORDER_FAILED;
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

PG_FUNCTION_INFO_V1(tn_worker_info);

/* worker_info(): what the worker has reported, for the worker_status view. */
Datum
tn_worker_info(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	WorkerStats st;
	int			pid;
	Datum		values[10];
	bool		nulls[10] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("twilio_numbers is not loaded via shared_preload_libraries, so there is no worker"),
				 errhint("Add twilio_numbers to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")));
	LWLockAcquire(shared->lock, LW_SHARED);
	st = shared->stats;
	pid = shared->worker_pid;
	LWLockRelease(shared->lock);

	values[0] = Int32GetDatum(pid);
	nulls[0] = pid == 0;
	values[1] = CStringGetTextDatum(tn_database);
	values[2] = TimestampTzGetDatum(st.started_at);
	nulls[2] = st.started_at == 0;
	values[3] = Int64GetDatum(st.restarts);
	values[4] = TimestampTzGetDatum(st.last_reconcile_at);
	nulls[4] = st.last_reconcile_at == 0;
	values[5] = Int64GetDatum(st.last_reconcile_findings);
	values[6] = TimestampTzGetDatum(st.last_billing_at);
	nulls[6] = st.last_billing_at == 0;
	values[7] = Int64GetDatum(st.jobs_done);
	values[8] = CStringGetTextDatum(st.last_error);
	nulls[8] = st.last_error[0] == '\0';
	values[9] = TimestampTzGetDatum(st.last_error_at);
	nulls[9] = st.last_error_at == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(tn_inflight);

/* inflight(): the intents, for monitoring. */
Datum
tn_inflight(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Intent	   *copy;
	int			n = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (shared == NULL)
		PG_RETURN_VOID();

	copy = palloc(sizeof(Intent) * shared->max_intents);
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->max_intents; i++)
		if (shared->intents[i].in_use)
			copy[n++] = shared->intents[i];
	LWLockRelease(shared->lock);

	for (int i = 0; i < n; i++)
	{
		Intent	   *it = &copy[i];
		Datum		values[12];
		bool		nulls[12] = {0};

		values[0] = CStringGetTextDatum(change_kind(it->kind)->name);
		values[1] = CStringGetTextDatum(!it->ended ? "in progress" :
										it->committed ? "committed" : "rolled back");
		values[2] = Int32GetDatum(it->pid);
		values[3] = TransactionIdGetDatum(it->xid);
		values[4] = Int64GetDatum(it->account_id);
		nulls[4] = it->account_id == 0;
		values[5] = Int64GetDatum(it->number_id);
		nulls[5] = it->number_id == 0;
		values[6] = CStringGetTextDatum(it->phone);
		values[7] = CStringGetTextDatum(it->sid);
		nulls[7] = it->sid[0] == '\0';
		values[8] = DirectFunctionCall3(numeric_in, CStringGetDatum(psprintf(INT64_FORMAT ".%02d",
																			 it->hold_cents / 100, (int) (it->hold_cents % 100))),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		values[9] = BoolGetDatum(it->posted);
		values[10] = TimestampTzGetDatum(it->started_at);
		values[11] = Int64GetDatum(it->attempt_id);
		nulls[11] = it->attempt_id == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tn_require_worker_sql);

/* _require_worker(): the checks for SQL functions that only queue work (numbers_release). */
Datum
tn_require_worker_sql(PG_FUNCTION_ARGS)
{
	require_worker(true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tn_purchase_in_flight_sql);

/* _purchase_in_flight(phone): is a transaction buying it right now? */
Datum
tn_purchase_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(intent_buying(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

PG_FUNCTION_INFO_V1(tn_attempt_in_flight_sql);

/* _attempt_in_flight(attempt_id): is its transaction (or its settling) not over? */
Datum
tn_attempt_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(intents_attempt_in_flight(PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(tn_sid_in_flight_sql);

/* _sid_in_flight(sid): does a transaction in flight (or its settling) know this SID? */
Datum
tn_sid_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(intents_sid_in_flight(text_to_cstring(PG_GETARG_TEXT_PP(0)), -1));
}
