/*
 * shmem.c — the background worker's shared state: its latch (backends wake it
 * when a transaction ends), what it reports about itself (worker_status), and
 * the checks a function that needs the worker makes before any request.
 * Intents and the attempt recorder's hand-off have their own segment
 * (intents.c); the SQL-callable views over both are in monitor.c.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "fmgr.h"
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
#include "errcodes.h"
#include "runners.h"
#include "settings.h"

typedef struct TnShared
{
	LWLock	   *lock;
	Latch	   *worker_latch;	/* NULL while no worker runs */
	int			worker_pid;
	WorkerStats stats;
} TnShared;

static TnShared *shared = NULL;

Size
shmem_size(void)
{
	return sizeof(TnShared);
}

void
shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("twilio_numbers worker state", shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, shmem_size());
		shared->lock = &(GetNamedLWLockTranche("twilio_numbers"))[TN_LOCK_WORKER].lock;
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

/* The same for a function that only queues work for the worker (numbers_release). */
void
shmem_require_worker_to_queue(void)
{
	require_worker(true);
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

/* What the worker has reported, and its pid (0: none runs); false if not preloaded. */
bool
shmem_worker_stats(WorkerStats *stats, int *pid)
{
	if (shared == NULL)
		return false;
	LWLockAcquire(shared->lock, LW_SHARED);
	*stats = shared->stats;
	*pid = shared->worker_pid;
	LWLockRelease(shared->lock);
	return true;
}
