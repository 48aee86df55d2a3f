/*
 * worker.c — the background workers that do the extension's work at
 * Twilio, in the database named by twilio_numbers.database, started through
 * shared_preload_libraries:
 *
 *   - the worker (worker_main), one per cluster: the passes.  It reconciles
 *     with Twilio at start-up and every reconcile_interval_s, and bills at
 *     start-up and every billing_interval_s (each batch its own short
 *     transaction).  It runs no queued job: a pass, however long, holds
 *     nothing up.
 *   - the queue runners (runner_main), twilio_numbers.queue_workers of them:
 *     each drains work_queue one job at a time, urgent first — compensations
 *     of rolled-back purchases and hosted orders, then releases, then
 *     re-syncs (changes, trunks, transfers), then hosted-order polls; oldest
 *     first within a kind.  A job is claimed FOR UPDATE SKIP LOCKED together
 *     with a transaction-level advisory lock on its phone number, so two
 *     runners never work on one number at once (a release never races its
 *     own number's re-sync); the job's requests, and its outcome, are in that
 *     one short transaction.  A failure is retried with exponential backoff
 *     until queue_max_attempts, after which the job is a dead letter (NOTIFY
 *     twilio_numbers_dead_letter); a row lock an application holds ends the
 *     attempt after lock_timeout and the job comes back a second later,
 *     uncounted.  The runners' requests share the cluster's request budget
 *     (budget.c) with everything else.
 *
 * All sleep on their latches and wake when a transaction that bought,
 * changed or queued something ends (xact.c, recorder.c), when their next
 * due work is, and every worker_interval_ms regardless.  They say what they
 * do in pg_stat_activity and are restarted by the postmaster if they die.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "jobs.h"
#include "connect.h"
#include "credentials.h"
#include "incarnation.h"
#include "queue.h"
#include "reconcile.h"
#include "runners.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twclock.h"
#include "twilio.h"

#define JOBS_PER_WAKE 200
/* jobs of busy numbers a claim skips before it gives up for now */
#define CLAIM_TRIES 32

static MemoryContext worker_cxt = NULL;

static void
begin_tx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
commit_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* the commit leaves TopMemoryContext current: back to the per-wake one */
	MemoryContextSwitchTo(worker_cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * After an ERROR inside one unit of work: log it, abort the transaction,
 * and hand back a copy of the message (in the worker's context).
 */
static char *
recover_from_error_code(int *sqlerrcode)
{
	ErrorData  *edata;
	char	   *message;

	MemoryContextSwitchTo(worker_cxt);
	edata = CopyErrorData();
	HOLD_INTERRUPTS();
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
	RESUME_INTERRUPTS();
	MemoryContextSwitchTo(worker_cxt);	/* the abort left TopMemoryContext current */
	message = pstrdup(edata->message ? edata->message : "unknown error");
	if (sqlerrcode)
		*sqlerrcode = edata->sqlerrcode;
	FreeErrorData(edata);
	shmem_worker_note(WORKER_NOTE_ERROR, 0, message);
	pgstat_report_activity(STATE_IDLE, NULL);
	return message;
}

static char *
recover_from_error(void)
{
	return recover_from_error_code(NULL);
}

/* What a wake found the database to be. */
typedef enum WorkerMode
{
	MODE_WAITING,				/* no extension here, or another version's schema */
	MODE_HELD,					/* a copy held from Twilio (or detached): no work */
	MODE_LIVE					/* the live incarnation: all the work */
} WorkerMode;

/* a queue runner: look_around leaves the reports to the worker */
static bool is_runner = false;

/* the episodes the worker reports once each (a line when they start and end) */
static bool waiting_logged = false;
static bool version_warned = false;
static bool held_warned = false;

/*
 * What a wake starts with, in one transaction (an idle wake costs no more):
 * is the extension installed here, at this library's version, is this the
 * live incarnation, and in how many ms is the next queued job due (<= 0:
 * now; the interval when none)?
 */
static WorkerMode
look_around(long *next_job_ms)
{
	WorkerMode	mode = MODE_LIVE;
	int64		due_ms;
	char	   *version;

	*next_job_ms = tn_worker_interval_ms;
	begin_tx("twilio_numbers: looking for work");
	version = store_extension_version();
	if (version == NULL)
	{
		mode = MODE_WAITING;
		if (!waiting_logged && !is_runner)
			ereport(LOG,
					(errmsg("twilio_numbers worker: waiting for CREATE EXTENSION twilio_numbers in database \"%s\"",
							tn_database)));
		waiting_logged = true;
		version_warned = false;
	}
	else if (strcmp(version, EXTVERSION) != 0)
	{
		mode = MODE_WAITING;
		if (!version_warned && !is_runner)
			ereport(WARNING,
					(errmsg("twilio_numbers worker: the library is version %s but the extension in database \"%s\" is version %s; the worker waits",
							EXTVERSION, tn_database, version),
					 errhint("Run ALTER EXTENSION twilio_numbers UPDATE in database \"%s\".", tn_database)));
		version_warned = true;
		waiting_logged = true;
	}
	else
	{
		IncarnationStatus status = incarnation_status();

		waiting_logged = version_warned = false;
		if (status != INCARNATION_LIVE)
		{
			mode = MODE_HELD;
			if (is_runner)
				;				/* the worker says it */
			else if (!held_warned && status == INCARNATION_HELD)
				ereport(WARNING,
						(errmsg("twilio_numbers worker: database \"%s\" is a copy held from Twilio; it runs no queued job, no billing and no reconcile",
								tn_database),
						 errdetail("%s.", incarnation_describe()),
						 errhint("If this copy is now the business, run SELECT twilio_numbers.numbers_make_live(); "
								 "for staging, SELECT twilio_numbers.numbers_detach().")));
			else if (!held_warned)
				ereport(LOG,
						(errmsg("twilio_numbers worker: database \"%s\" is detached from Twilio; the worker stays idle",
								tn_database)));
			held_warned = true;
		}
		else
		{
			if (held_warned && !is_runner)
				ereport(LOG,
						(errmsg("twilio_numbers worker: database \"%s\" is now the live incarnation at Twilio",
								tn_database)));
			held_warned = false;
			if (store_queue_next_due_ms(tn_pause_writes, &due_ms))
				*next_job_ms = Min(*next_job_ms, due_ms);
		}
	}
	commit_tx();
	return mode;
}

/*
 * Record a job's outcome (queue.sql's rules): done; or failed, retried with
 * backoff or a dead letter after queue_max_attempts.  A failure that was an
 * outage (Twilio unreachable, 5xx, our credentials refused) is not the
 * job's: it is not counted towards a dead letter.  Returns true when the job
 * has just become a dead letter.
 */
static bool
record_outcome(int64 job_id, bool done, const char *error, bool outage)
{
	if (done)
	{
		store_queue_done(job_id, error);
		return false;
	}
	return store_queue_failed(job_id, error, outage, (double) tn_queue_retry_base_ms,
							  (double) tn_queue_retry_max_ms, tn_queue_max_attempts);
}

/*
 * A job ended: note an outage starting or ending, and a dead letter.  The
 * outage episode is shared by the runners (connect.c's shared memory), so
 * the cluster logs one WARNING when it starts and one LOG line when a job
 * succeeds again, whichever runner meets them.
 */
static void
note_job_end(const Job *job, bool done, TwilioOutage outage, bool dead, const char *error)
{
	TwilioOutage outage_episode = (TwilioOutage) connect_outage_get();

	if (!done && outage != TWILIO_OUTAGE_NONE && outage_episode != outage)
		outage_episode = (TwilioOutage) connect_outage_exchange((int) outage);
	else if (done && outage_episode != TWILIO_OUTAGE_NONE)
		outage_episode = (TwilioOutage) connect_outage_exchange((int) TWILIO_OUTAGE_NONE);
	else
		outage_episode = outage;	/* nothing changes */

	/* (an outage of another kind — unreachable, then refusing us — is another episode) */
	if (!done && outage != TWILIO_OUTAGE_NONE && outage_episode != outage)
		ereport(WARNING,
				(errmsg(outage == TWILIO_OUTAGE_AUTH
						? "twilio_numbers worker: Twilio refuses the credentials (HTTP 401/403); queued jobs wait and are not counted towards dead letters"
						: "twilio_numbers worker: Twilio is unreachable or failing (no reply or HTTP 5xx); queued jobs wait and are not counted towards dead letters"),
				 errdetail("Job " INT64_FORMAT " (%s %s): %s", job->job_id, job->kind, job->phone ? job->phone : "",
						   error ? error : "failed"),
				 errhint(outage == TWILIO_OUTAGE_AUTH
						 ? "Check the account SID and token (twilio_numbers.credentials_file), then SELECT pg_reload_conf()."
						 : "Jobs retry with a doubling wait up to twilio_numbers.queue_retry_max_ms; nothing is lost.")));
	else if (done && outage_episode != TWILIO_OUTAGE_NONE)
		ereport(LOG, (errmsg("twilio_numbers worker: Twilio answers again; the queue settles")));
	if (dead)
		ereport(WARNING,
				(errmsg("twilio_numbers worker: job " INT64_FORMAT " (%s %s) is a dead letter after %d attempts",
						job->job_id, job->kind, job->phone ? job->phone : "", job->attempts + 1),
				 errdetail("%s", error ? error : "failed"),
				 errhint("Fix the cause, then SELECT twilio_numbers.numbers_retry_dead_letter(" INT64_FORMAT ").",
						 job->job_id)));
}

/*
 * Claim the next due job, run it and record the outcome, all in one short
 * transaction.  Returns false when no job was due.
 */
static bool
run_one_job(void)
{
	volatile int64 job_id = 0;
	volatile bool ran = false;

	PG_TRY();
	{
		Job			job;
		char	   *error = NULL;
		bool		done;
		JobOutcome	outcome;
		long		again_ms;

		begin_tx("twilio_numbers: running a queued job");
		/*
		 * The claim (queue.sql's _queue_claim): urgent first, oldest first
		 * within a kind, FOR UPDATE SKIP LOCKED, with a transaction-level
		 * advisory lock on the job's number, so two runners never work on
		 * one number at once; jobs of busy numbers are skipped, CLAIM_TRIES
		 * at most.
		 */
		if (store_queue_claim(tn_pause_writes, CLAIM_TRIES, &job))
		{
			job_id = job.job_id;

			pgstat_report_activity(STATE_RUNNING,
								   psprintf("twilio_numbers: %s %s (job " INT64_FORMAT ", attempt %d)",
											job.kind, job.phone ? job.phone : "", job.job_id,
											job.attempts + 1));
			twilio_outage_seen = TWILIO_OUTAGE_NONE;
			outcome = jobs_run(&job, &error, &again_ms);
			if (outcome == JOB_AGAIN)
				store_queue_again(job.job_id, again_ms);
			else
			{
				bool		dead;

				done = outcome == JOB_DONE;
				dead = record_outcome(job.job_id, done, error, twilio_outage_seen != TWILIO_OUTAGE_NONE);
				note_job_end(&job, done, done ? TWILIO_OUTAGE_NONE : twilio_outage_seen, dead, error);
				shmem_worker_note(done ? WORKER_NOTE_JOB_DONE : WORKER_NOTE_JOB_FAILED, 1,
							   done ? NULL : psprintf("job " INT64_FORMAT " (%s %s): %s", job.job_id, job.kind,
													  job.phone ? job.phone : "", error ? error : "failed"));
			}
			ran = true;
		}
		commit_tx();
	}
	PG_CATCH();
	{
		int			code = 0;
		char	   *message = recover_from_error_code(&code);

		if (job_id != 0)
		{
			begin_tx("twilio_numbers: recording a failed job");
			if (code == ERRCODE_LOCK_NOT_AVAILABLE)
			{
				/* a row an open transaction holds: come back, it is no failure */
				store_queue_again(job_id, 1000);
			}
			else
			{
				/* count the failed attempt in a fresh transaction */
				(void) record_outcome(job_id, false, message, false);
			}
			commit_tx();
			ran = true;
		}
	}
	PG_END_TRY();
	return ran;
}

static void
worker_exit(int code, Datum arg)
{
	shmem_worker_unregister();
}

/* the accounts reconcile could not list last time (one WARNING per set, a LOG line when all list again) */
static char *unreachable_warned = NULL;

static void
note_unreachable(const char *accounts)
{
	if (accounts && (unreachable_warned == NULL || strcmp(accounts, unreachable_warned) != 0))
	{
		ereport(WARNING,
				(errmsg("twilio_numbers worker: reconcile could not list Twilio account%s %s",
						strstr(accounts, "), ") ? "s" : "", accounts),
				 errdetail("The other accounts are reconciled; numbers in these are left alone until they list again."),
				 errhint("Check the account at Twilio (suspended, closed) and the credentials.")));
		if (unreachable_warned)
			pfree(unreachable_warned);
		unreachable_warned = MemoryContextStrdup(TopMemoryContext, accounts);
	}
	else if (accounts == NULL && unreachable_warned != NULL)
	{
		ereport(LOG, (errmsg("twilio_numbers worker: reconcile lists every managed Twilio account again")));
		pfree(unreachable_warned);
		unreachable_warned = NULL;
	}
}

/*
 * A reconcile pass in its own transaction.  At start-up it covers a crash
 * restart (intents of rolled-back purchases were in shared memory); later
 * it runs every reconcile_interval_s.  Returns false when it failed.
 */
static bool
reconcile_pass(const char *why)
{
	volatile bool ok = true;

	PG_TRY();
	{
		uint64		found;

		char	   *unreachable;

		begin_tx(psprintf("twilio_numbers: reconciling with Twilio (%s)", why));
		found = reconcile_in_worker(&unreachable);
		note_unreachable(unreachable);
		commit_tx();
		shmem_worker_note(WORKER_NOTE_RECONCILE, (int64) found, NULL);
		if (found > 0)
			ereport(LOG,
					(errmsg("twilio_numbers worker: reconcile (%s) found " UINT64_FORMAT " difference%s; see twilio_numbers.drift_report",
							why, found, found == 1 ? "" : "s")));
	}
	PG_CATCH();
	{
		(void) recover_from_error();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * The postmaster died (kill -9 of it alone: its children live on until they
 * look): stop at once rather than bill on or run more jobs.  Until this
 * process exits it holds the dead cluster's shared memory, so no new
 * postmaster (a cluster manager's restart) can start, and a promoted standby
 * may already act at Twilio.  Checked before each billing batch and job.
 */
static void
exit_if_postmaster_died(void)
{
	if (!PostmasterIsAlive())
		proc_exit(1);
}

/*
 * A setting with a unit as an interval, read as current_setting() reads it
 * ("7d" is 7 days, as SQL would add it), for the SQL the worker runs: its
 * settings are passed, never read back there.  In the worker's context.
 */
static Interval *
setting_interval(const char *name)
{
	MemoryContext old = MemoryContextSwitchTo(worker_cxt);
	Interval   *result;

	result = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												   CStringGetDatum(GetConfigOptionByName(name, NULL, false)),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * One billing pass as of now: its run row first (committed, so progress is
 * visible), then each batch in its own short transaction, then the run is
 * finished and announced.  Returns false when it failed (it is retried).
 */
static bool
billing_pass(void)
{
	volatile int64 run_id = 0;
	volatile bool ok = true;

	PG_TRY();
	{
		TimestampTz as_of;
		int			nbatches;
		int64	   *lo;
		int64	   *hi;
		Interval   *grace = setting_interval("twilio_numbers.grace_period");

		begin_tx("twilio_numbers: billing (planning the batches)");
		as_of = GetCurrentTransactionStartTimestamp();	/* now() */
		{
			MemoryContext old = MemoryContextSwitchTo(worker_cxt);

			run_id = store_billing_run_start(as_of, tn_billing_batch_size, &nbatches, &lo, &hi);
			MemoryContextSwitchTo(old);
		}
		commit_tx();

		for (int i = 0; i < nbatches; i++)
		{
			CHECK_FOR_INTERRUPTS();
			exit_if_postmaster_died();
			begin_tx(psprintf("twilio_numbers: billing batch %d of %d (run " INT64_FORMAT ")",
							  i + 1, nbatches, (int64) run_id));
			store_billing_run_batch(run_id, lo[i], hi[i], as_of, grace);
			commit_tx();
		}

		begin_tx("twilio_numbers: billing (finishing)");
		store_billing_run_finish(run_id);
		commit_tx();
		shmem_worker_note(WORKER_NOTE_BILLING, 0, NULL);
	}
	PG_CATCH();
	{
		char	   *message = recover_from_error();

		ok = false;
		if (run_id != 0)
		{
			begin_tx("twilio_numbers: billing (recording the failure)");
			store_billing_run_failed(run_id, message);
			commit_tx();
		}
	}
	PG_END_TRY();
	return ok;
}

/* Runs a killed worker left 'running' are over: say so. */
static void
mark_interrupted_runs(void)
{
	begin_tx("twilio_numbers: starting");
	store_billing_runs_interrupted();
	commit_tx();
}

/*
 * Is a periodic pass due: its interval (as the settings say now, so that a
 * reload takes effect at once) after the last one began, or a minute after
 * one failed?  0 for last: at start-up.
 */
static bool
pass_due(TimestampTz now, TimestampTz last, bool last_ok, int64 interval_ms)
{
	return last == 0 || now >= TimestampTzPlusMilliseconds(last, last_ok ? interval_ms : (int64) 60000);
}

/* What the worker has done, for when it does it again. */
typedef struct Schedule
{
	bool		started;		/* the start-up steps are done */
	TimestampTz last_reconcile; /* when the last pass began; 0: none yet */
	bool		reconcile_ok;
	TimestampTz last_billing;
	bool		billing_ok;
} Schedule;

/*
 * Run due jobs, a bounded number per wake; true when one ran.  After each,
 * the other runners are woken: a job of the same number may have waited.
 */
static bool
drain_queue(void)
{
	bool		ran = false;

	for (int i = 0; i < JOBS_PER_WAKE; i++)
	{
		exit_if_postmaster_died();
		if (!run_one_job())
			break;
		ran = true;
		runners_wake();
		CHECK_FOR_INTERRUPTS();
		connect_reload_if_pending();
	}
	return ran;
}

/*
 * One wake of the worker, its passes in order; returns how long to sleep.
 * At start-up (a crash restart included) runs a killed worker left are
 * marked, and the reconcile pass covers what the lost shared memory knew.
 * Queued jobs are the runners'.
 */
static long
wake(Schedule *sched)
{
	long		next_job_ms;
	TimestampTz now;

	if (look_around(&next_job_ms) != MODE_LIVE)
	{
		/* when it acts again (re-created, updated, made live): the start-up passes at once */
		memset(sched, 0, sizeof(*sched));
		return tn_worker_interval_ms;
	}
	now = GetCurrentTimestamp();
	if (!sched->started)
	{
		mark_interrupted_runs();
		sched->started = true;
	}
	if (tn_reconcile_interval_s >= 0 &&
		(sched->last_reconcile == 0 ||
		 (tn_reconcile_interval_s > 0 &&
		  pass_due(now, sched->last_reconcile, sched->reconcile_ok, (int64) tn_reconcile_interval_s * 1000))))
	{
		bool		first = sched->last_reconcile == 0;

		sched->last_reconcile = now;
		sched->reconcile_ok = reconcile_pass(first ? "start-up" : "periodic");
	}
	if (!tn_pause_billing &&
		pass_due(now, sched->last_billing, sched->billing_ok, (int64) tn_billing_interval_s * 1000))
	{
		sched->last_billing = now;
		sched->billing_ok = billing_pass();
	}
	return tn_worker_interval_ms;
}

/*
 * One wake of a queue runner; returns how long to sleep: not at all after
 * it ran jobs, until the next job is due, or (due jobs all taken, or their
 * numbers busy) until a runner that finishes one wakes it.
 */
static long
runner_wake(void)
{
	long		next_job_ms;

	if (look_around(&next_job_ms) != MODE_LIVE)
		return tn_worker_interval_ms;
	if (next_job_ms > 0)
		return next_job_ms;
	return drain_queue() ? 0 : tn_worker_interval_ms;
}

/*
 * The start line: the library's version, the database, the Twilio account
 * (never a secret) and where its credentials come from.
 */
static void
log_start(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile account = NULL;
	char	   *volatile problem = NULL;

	PG_TRY();
	{
		credentials_load();
		account = pstrdup(tn_account_sid[0] ? tn_account_sid : "(none configured)");
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		problem = psprintf("%s: %s", edata->message, edata->detail ? edata->detail : "");
	}
	PG_END_TRY();
	ereport(LOG,
			(errmsg("twilio_numbers worker %s started in database \"%s\" for Twilio account %s (credentials from %s)",
					EXTVERSION, tn_database, account ? account : "(unknown)", credentials_source()),
			 problem ? errdetail_internal("%s", problem) : 0));
}

/* the entry module.c registers by name: looked up in this library when the worker starts */
PGDLLEXPORT void worker_main(Datum main_arg);

void
worker_main(Datum main_arg)
{
	Schedule	sched = {0};

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	connect_to_database(CONNECT_WORKER, "twilio_numbers worker");
	pgstat_report_appname("twilio_numbers worker");
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "twilio_numbers worker",
									   ALLOCSET_DEFAULT_SIZES);
	shmem_worker_register();
	on_shmem_exit(worker_exit, (Datum) 0);
	log_start();

	for (;;)
	{
		long		wait = tn_worker_interval_ms;
		MemoryContext oldcxt = MemoryContextSwitchTo(worker_cxt);

		connect_reload_if_pending();

		PG_TRY();
		{
			wait = wake(&sched);
			/* a skew of Twilio's clock measured by anyone: warned once per episode */
			twclock_report_skew();
		}
		PG_CATCH();
		{
			(void) recover_from_error();
		}
		PG_END_TRY();

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(worker_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static int	runner_index = 0;

static void
runner_exit(int code, Datum arg)
{
	runners_unregister(runner_index);
}

/* the queue runners' entry, registered by module.c (main_arg: the runner's index) */
PGDLLEXPORT void runner_main(Datum main_arg);

void
runner_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	runner_index = DatumGetInt32(main_arg);
	is_runner = true;
	connect_to_database(CONNECT_RUNNER + runner_index, psprintf("twilio_numbers queue runner %d", runner_index + 1));
	pgstat_report_appname("twilio_numbers queue runner");
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "twilio_numbers queue runner",
									   ALLOCSET_DEFAULT_SIZES);
	/* an application's row lock ends a job's attempt, not the runner's day */
	SetConfigOption("lock_timeout", "1000", PGC_SUSET, PGC_S_OVERRIDE);
	runners_register(runner_index);
	on_shmem_exit(runner_exit, (Datum) 0);

	for (;;)
	{
		long		wait = tn_worker_interval_ms;
		MemoryContext oldcxt = MemoryContextSwitchTo(worker_cxt);

		connect_reload_if_pending();

		PG_TRY();
		{
			wait = runner_wake();
		}
		PG_CATCH();
		{
			(void) recover_from_error();
		}
		PG_END_TRY();

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(worker_cxt);

		if (wait > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
