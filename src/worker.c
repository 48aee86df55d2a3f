/*
 * worker.c — the background worker: one per cluster, in the database named
 * by twilio_numbers.database, started through shared_preload_libraries.
 *
 * It sleeps on its latch and wakes when a transaction that bought, changed
 * or queued something ends (xact.c sets the latch) and every
 * worker_interval_ms regardless.  Each wake it
 *   1. settles ended intents: a purchase whose row did not commit gets a
 *      compensate job, a rolled-back change a resync job (one short
 *      transaction), then frees their shared-memory slots;
 *   2. drains due jobs of work_queue one at a time, each in its own short
 *      transaction (claimed FOR UPDATE SKIP LOCKED, run, outcome recorded),
 *      retrying failures with exponential backoff until queue_max_attempts,
 *      after which the job is a dead letter (NOTIFY twilio_numbers_dead_letter).
 * It says what it is doing in pg_stat_activity and is restarted by the
 * postmaster if it dies.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "twilio_numbers.h"

#define SETTLE_BATCH 64
#define JOBS_PER_WAKE 200

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
recover_from_error(void)
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
	FreeErrorData(edata);
	tn_worker_note(WORKER_NOTE_ERROR, 0, message);
	pgstat_report_activity(STATE_IDLE, NULL);
	return message;
}

/* Is the extension (at a version with the queue) installed here? */
static bool
extension_ready(void)
{
	bool		ready;
	bool		isnull;

	begin_tx("twilio_numbers: checking the extension");
	if (SPI_execute("SELECT to_regclass('twilio_numbers.work_queue') IS NOT NULL", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check for the extension");
	ready = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	commit_tx();
	return ready;
}

/* Queue a job (inside the current transaction). */
static void
enqueue(const char *kind, int64 number_id, const char *phone, const char *sid,
		const char *account_sid, const char *payload, int64 attempt_id)
{
	Oid			types[7] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = CStringGetTextDatum(kind);
	args[1] = Int64GetDatum(number_id);
	nulls[1] = number_id ? ' ' : 'n';
	args[2] = phone && phone[0] ? CStringGetTextDatum(phone) : (Datum) 0;
	nulls[2] = phone && phone[0] ? ' ' : 'n';
	args[3] = sid && sid[0] ? CStringGetTextDatum(sid) : (Datum) 0;
	nulls[3] = sid && sid[0] ? ' ' : 'n';
	args[4] = account_sid && account_sid[0] ? CStringGetTextDatum(account_sid) : (Datum) 0;
	nulls[4] = account_sid && account_sid[0] ? ' ' : 'n';
	args[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload ? payload : "{}"));
	args[6] = Int64GetDatum(attempt_id);
	nulls[6] = attempt_id ? ' ' : 'n';
	if (SPI_execute_with_args("INSERT INTO twilio_numbers.work_queue "
							  "(kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
							  7, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into work_queue");
}

/*
 * Settle one ended intent (inside the settling transaction): a committed
 * creation closes its attempt; one that rolled back after its request may
 * have reached Twilio is undone by a job (which closes the attempt); one
 * whose request was refused closes it as refused; a rolled-back change is
 * re-synced.
 */
static void
settle_intent(const Intent *it)
{
	const char *undo = it->kind == INTENT_PURCHASE ? "compensate" : "hosted_cancel";

	switch (it->kind)
	{
		case INTENT_PURCHASE:
		case INTENT_HOSTED:
			if (it->committed)
				attempt_close(it->attempt_id, "committed", it->sid);
			else if (!it->posted)
				attempt_close(it->attempt_id, "refused", NULL);
			else if (it->kind == INTENT_PURCHASE && it->sid[0] && tn_live_row_owns(it->sid))
				attempt_close(it->attempt_id, "committed", it->sid);
			else
				enqueue(undo, 0, it->phone, it->sid, it->twilio_account_sid, NULL, it->attempt_id);
			break;
		case INTENT_RESYNC:
			enqueue("resync", it->number_id, it->phone, NULL, NULL,
					it->twilio_account_sid[0]
					? psprintf("{\"other_account_sid\": \"%s\"}", it->twilio_account_sid) : NULL, 0);
			break;
	}
}

/* Settle ended intents (one transaction per batch), then free their slots. */
static void
settle_intents(void)
{
	Intent		intents[SETTLE_BATCH];
	int			slots[SETTLE_BATCH];
	int			n;

	while ((n = tn_intents_ended(intents, slots, SETTLE_BATCH)) > 0)
	{
		begin_tx("twilio_numbers: settling ended transactions");
		for (int i = 0; i < n; i++)
			settle_intent(&intents[i]);
		commit_tx();
		tn_intents_free(slots, n);
	}
}

/* A poll that is not finished: run it again after again_ms, no failure. */
static void
record_again(int64 job_id, long again_ms)
{
	Oid			types[2] = {INT8OID, FLOAT8OID};
	Datum		args[2] = {Int64GetDatum(job_id), Float8GetDatum((double) again_ms)};

	if (SPI_execute_with_args("UPDATE twilio_numbers.work_queue SET attempts = 0, last_error = NULL, "
							  "updated_at = now(), next_attempt_at = now() + make_interval(secs => $2 / 1000.0) "
							  "WHERE job_id = $1", 2, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update work_queue");
}

/* Record a job's outcome: done, or retry with backoff, or dead. */
static void
record_outcome(int64 job_id, int attempts, bool done, const char *error)
{
	Oid			types[4] = {INT8OID, BOOLOID, TEXTOID, FLOAT8OID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	double		backoff_ms;

	/* base * 2^attempts, jittered to 50-100 %, capped */
	backoff_ms = (double) tn_queue_retry_base_ms * (double) (1L << Min(attempts, 20));
	backoff_ms = Min(backoff_ms, (double) tn_queue_retry_max_ms);
	backoff_ms *= 0.5 + 0.5 * pg_prng_double(&pg_global_prng_state);

	args[0] = Int64GetDatum(job_id);
	args[1] = BoolGetDatum(done);
	args[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[2] = error ? ' ' : 'n';
	args[3] = Float8GetDatum(backoff_ms);
	if (SPI_execute_with_args("WITH j AS ("
							  "  UPDATE twilio_numbers.work_queue SET "
							  "    attempts = attempts + 1, last_error = $3, updated_at = now(), "
							  "    status = CASE WHEN $2 THEN 'done' "
							  "                  WHEN attempts + 1 >= current_setting('twilio_numbers.queue_max_attempts')::int "
							  "                  THEN 'dead' ELSE 'pending' END, "
							  "    finished_at = CASE WHEN $2 THEN now() END, "
							  "    next_attempt_at = CASE WHEN $2 THEN next_attempt_at "
							  "                      ELSE now() + make_interval(secs => $4 / 1000.0) END "
							  "  WHERE job_id = $1 RETURNING job_id, status, kind, phone_number) "
							  "SELECT pg_notify('twilio_numbers_dead_letter', "
							  "                 json_build_object('job_id', job_id, 'kind', kind, "
							  "                                   'phone_number', phone_number)::text) "
							  "FROM j WHERE status = 'dead'",
							  4, types, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not update work_queue");
}

/*
 * Claim the next due job, run it and record the outcome, all in one short
 * transaction.  Returns false when no job was due.
 */
static bool
run_one_job(void)
{
	volatile int64 job_id = 0;
	volatile int attempts = 0;
	volatile bool ran = false;

	PG_TRY();
	{
		Job			job;
		char	   *error = NULL;
		bool		done;
		bool		isnull;
		JobOutcome	outcome;
		long		again_ms;

		begin_tx("twilio_numbers: running a queued job");
		if (SPI_execute("SELECT job_id, kind, number_id, phone_number, twilio_sid, twilio_account_sid, "
						"payload::text, attempts, attempt_id, created_at "
						"FROM twilio_numbers.work_queue "
						"WHERE status = 'pending' AND next_attempt_at <= now() "
						"ORDER BY next_attempt_at, job_id LIMIT 1 FOR UPDATE SKIP LOCKED",
						false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read work_queue");
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		number_id;

			job.job_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			job.kind = SPI_getvalue(tup, desc, 2);
			number_id = SPI_getbinval(tup, desc, 3, &isnull);
			job.number_id = isnull ? 0 : DatumGetInt64(number_id);
			job.phone = SPI_getvalue(tup, desc, 4);
			job.sid = SPI_getvalue(tup, desc, 5);
			job.account_sid = SPI_getvalue(tup, desc, 6);
			job.payload = SPI_getvalue(tup, desc, 7);
			job.attempts = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
			job.attempt_id = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
			if (isnull)
				job.attempt_id = 0;
			job.created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 10, &isnull));
			job_id = job.job_id;
			attempts = job.attempts;

			pgstat_report_activity(STATE_RUNNING,
								   psprintf("twilio_numbers: %s %s (job " INT64_FORMAT ", attempt %d)",
											job.kind, job.phone ? job.phone : "", job.job_id,
											job.attempts + 1));
			outcome = tn_job_run(&job, &error, &again_ms);
			if (outcome == JOB_AGAIN)
				record_again(job.job_id, again_ms);
			else
			{
				done = outcome == JOB_DONE;
				record_outcome(job.job_id, job.attempts, done, error);
				tn_worker_note(done ? WORKER_NOTE_JOB_DONE : WORKER_NOTE_JOB_FAILED, 1,
							   done ? NULL : psprintf("job " INT64_FORMAT " (%s %s): %s", job.job_id, job.kind,
													  job.phone ? job.phone : "", error ? error : "failed"));
			}
			ran = true;
		}
		commit_tx();
	}
	PG_CATCH();
	{
		char	   *message = recover_from_error();

		if (job_id != 0)
		{
			/* count the failed attempt in a fresh transaction */
			begin_tx("twilio_numbers: recording a failed job");
			record_outcome(job_id, attempts, false, message);
			commit_tx();
			ran = true;
		}
	}
	PG_END_TRY();
	return ran;
}

/* Milliseconds until the next pending job is due (capped by the interval). */
static long
next_wait_ms(void)
{
	long		wait = tn_worker_interval_ms;
	bool		isnull;
	Datum		d;

	begin_tx("twilio_numbers: idle");
	if (SPI_execute("SELECT ceil(extract(epoch FROM min(next_attempt_at) - clock_timestamp()) * 1000)::bigint "
					"FROM twilio_numbers.work_queue WHERE status = 'pending'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read work_queue");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		wait = Max(1, Min(wait, DatumGetInt64(d)));
	commit_tx();
	return wait;
}

static void
worker_exit(int code, Datum arg)
{
	tn_worker_unregister();
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

		begin_tx(psprintf("twilio_numbers: reconciling with Twilio (%s)", why));
		found = tn_reconcile_in_worker();
		commit_tx();
		tn_worker_note(WORKER_NOTE_RECONCILE, (int64) found, NULL);
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
		Datum		as_of;
		int			nbatches;
		int64	   *lo;
		int64	   *hi;
		bool		isnull;
		Oid			types[4] = {INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID};

		begin_tx("twilio_numbers: billing (planning the batches)");
		if (SPI_execute("WITH b AS (SELECT * FROM twilio_numbers._billing_batches(now(), "
						"current_setting('twilio_numbers.billing_batch_size')::integer)) "
						"SELECT now(), (SELECT count(*) FROM b)::integer, "
						"(SELECT coalesce(array_agg(lo ORDER BY lo), '{}') FROM b), "
						"(SELECT coalesce(array_agg(hi ORDER BY lo), '{}') FROM b)", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not plan the billing pass");
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum	   *elems;
			int			n;
			MemoryContext old = MemoryContextSwitchTo(worker_cxt);

			as_of = SPI_getbinval(tup, desc, 1, &isnull);
			nbatches = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
			lo = palloc(sizeof(int64) * Max(nbatches, 1));
			hi = palloc(sizeof(int64) * Max(nbatches, 1));
			deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)),
							  INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, NULL, &n);
			for (int i = 0; i < n; i++)
				lo[i] = DatumGetInt64(elems[i]);
			deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)),
							  INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, NULL, &n);
			for (int i = 0; i < n; i++)
				hi[i] = DatumGetInt64(elems[i]);
			MemoryContextSwitchTo(old);
		}
		if (SPI_execute_with_args("INSERT INTO twilio_numbers.billing_runs (as_of, started_by, batches_total) "
								  "VALUES ($1, 'worker', $2) RETURNING run_id",
								  2, (Oid[]) {TIMESTAMPTZOID, INT4OID},
								  (Datum[]) {as_of, Int32GetDatum(nbatches)}, NULL, false, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not start a billing run");
		run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		commit_tx();

		for (int i = 0; i < nbatches; i++)
		{
			Datum		args[4] = {Int64GetDatum(lo[i]), Int64GetDatum(hi[i]), as_of, Int64GetDatum(run_id)};

			CHECK_FOR_INTERRUPTS();
			begin_tx(psprintf("twilio_numbers: billing batch %d of %d (run " INT64_FORMAT ")",
							  i + 1, nbatches, (int64) run_id));
			if (SPI_execute_with_args("SELECT twilio_numbers._billing_run_batch($4, $1, $2, $3)",
									  4, types, args, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not bill a batch");
			commit_tx();
		}

		begin_tx("twilio_numbers: billing (finishing)");
		if (SPI_execute_with_args("SELECT twilio_numbers._billing_run_finish($1)",
								  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(run_id)}, NULL, false, 0)
			!= SPI_OK_SELECT)
			elog(ERROR, "could not finish the billing run");
		commit_tx();
		tn_worker_note(WORKER_NOTE_BILLING, 0, NULL);
	}
	PG_CATCH();
	{
		char	   *message = recover_from_error();

		ok = false;
		if (run_id != 0)
		{
			begin_tx("twilio_numbers: billing (recording the failure)");
			SPI_execute_with_args("UPDATE twilio_numbers.billing_runs SET status = 'failed', "
								  "finished_at = clock_timestamp(), error = $2 WHERE run_id = $1",
								  2, (Oid[]) {INT8OID, TEXTOID},
								  (Datum[]) {Int64GetDatum(run_id), CStringGetTextDatum(message)},
								  NULL, false, 0);
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
	if (SPI_execute("UPDATE twilio_numbers.billing_runs SET status = 'interrupted', "
					"finished_at = clock_timestamp(), error = 'the worker stopped during the run' "
					"WHERE status = 'running' AND started_by = 'worker'", false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update billing_runs");
	commit_tx();
}

void
tn_worker_main(Datum main_arg)
{
	volatile TimestampTz next_billing = 0;	/* 0: at start-up */
	volatile bool started = false;
	volatile TimestampTz next_reconcile = 0;	/* 0: at start-up */

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(tn_database, NULL, 0);
	pgstat_report_appname("twilio_numbers worker");
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "twilio_numbers worker",
									   ALLOCSET_DEFAULT_SIZES);
	tn_worker_register();
	on_shmem_exit(worker_exit, (Datum) 0);
	ereport(LOG, (errmsg("twilio_numbers worker started in database \"%s\"", tn_database)));

	for (;;)
	{
		long		wait = tn_worker_interval_ms;
		MemoryContext oldcxt = MemoryContextSwitchTo(worker_cxt);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		PG_TRY();
		{
			if (extension_ready())
			{
				TimestampTz now = GetCurrentTimestamp();

				if (!started)
				{
					mark_interrupted_runs();
					started = true;
				}
				settle_intents();
				if (tn_reconcile_interval_s >= 0 &&
					(next_reconcile == 0 || (tn_reconcile_interval_s > 0 && now >= next_reconcile)))
				{
					bool		ok = reconcile_pass(next_reconcile == 0 ? "start-up" : "periodic");

					/* after a failure, try again in a minute */
					next_reconcile = TimestampTzPlusMilliseconds(now,
																 ok ? (int64) Max(tn_reconcile_interval_s, 1) * 1000
																 : (int64) 60000);
				}
				if (next_billing == 0 || now >= next_billing)
				{
					bool		ok = billing_pass();

					/* after a failure, try again in a minute */
					next_billing = TimestampTzPlusMilliseconds(now,
															   ok ? (int64) tn_billing_interval_s * 1000
															   : (int64) 60000);
				}
				for (int i = 0; i < JOBS_PER_WAKE && run_one_job(); i++)
					CHECK_FOR_INTERRUPTS();
				wait = next_wait_ms();
			}
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
