/*
 * recorder.c — the attempt recorder: proof that this database tried to buy
 * a number, committed before the request that could buy it.
 *
 * Twilio's account is shared with the reseller's own numbers, other systems
 * and copies of this database, and releasing a number is irreversible.  So
 * reconcile releases a number only when a row of purchase_attempts shows
 * that this database asked Twilio for it (docs/design.md "Sharing a
 * Twilio account").  That row must be committed before the POST, and not in the
 * caller's transaction (which may roll back): a backend asks this small
 * background worker to insert and commit it, and waits.  The recorder does
 * nothing else — no HTTP, no long transaction — so the wait is one commit
 * (about a millisecond); requests that arrive together share one commit,
 * and purchases stay parallel.  Its commits are synchronous, so the row is
 * in the WAL (and on its way to any standby) before Twilio hears of the
 * purchase.
 *
 * It also settles the intents of transactions (and savepoints) that ended:
 * a committed creation's attempt is closed, a rolled-back one's undo is
 * queued for the worker, a rolled-back change gets its re-sync
 * (change_kinds.c) — all of it SQL, so slots are free within a commit of
 * the transaction's end, however long the worker's requests to Twilio take.
 *
 * Each row carries the epoch it was recorded in — the cluster's system
 * identifier, WAL timeline and database — so that a promoted standby or a
 * restored copy, whose epoch differs, reports rather than releases what an
 * attempt of the old primary may have bought (its commit may have been lost
 * with the old primary).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "recorder.h"
#include "change_kinds.h"
#include "config.h"
#include "connect.h"
#include "credentials.h"
#include "intents.h"
#include "queue.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"

#define RECORD_BATCH 256
#define SETTLE_BATCH 64

/* How long a backend waits for its attempt to be recorded. */
#define RECORD_WAIT_MS 10000

/* system identifier:timeline:database — where an attempt was recorded */
char *
recorder_epoch(void)
{
	return psprintf(UINT64_FORMAT ":%u:%u", GetSystemIdentifier(), GetWALInsertionTimeLine(),
					MyDatabaseId);
}

/*
 * Backend side: have an attempt row committed for each of these intents
 * (their phone numbers, to be created in twilio_account_sid) before any
 * request is sent.  Raises when the recorder cannot do it — nothing has
 * been sent to Twilio then.
 */
void
recorder_open_attempts(const int *slots, int n, const char *twilio_account_sid, uint16 config_mask,
				const char *config_md5)
{
	/* the latest moment a request of this purchase can still land at Twilio */
	int64		longest_ms = (int64) (tn_max_retries + 2) * (tn_timeout_ms + tn_retry_max_wait_ms);
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), longest_ms);

	intents_request_attempts(slots, n, twilio_account_sid, deadline, config_mask, config_md5);
	if (!intents_wait_recorder(slots, n, RECORD_WAIT_MS))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not record the purchase attempt"),
				 errdetail("The attempt recorder did not commit it within %d ms. Nothing was sent to Twilio.",
						   RECORD_WAIT_MS),
				 errhint("Check that the \"twilio_numbers attempt recorder\" process runs "
						 "(pg_stat_activity) and the server log.")));
}

/* A creation ended: close its attempt, or have what it left undone. */
static void
settle_creation(const ChangeKind *kind, const Intent *it)
{
	if (it->committed && it->unresolved > 0 && it->sid[0])
	{
		/*
		 * Committed, but a POST of it got no reply and may still land (after
		 * the number is released, say): a job watches for that until the
		 * attempt's deadline, and leaves what committed alone.
		 */
		queue_enqueue(kind->undo_job, 0, it->phone, it->sid, it->twilio_account_sid,
					  psprintf("{\"unresolved\": %d, \"committed\": true}", it->unresolved), it->attempt_id);
	}
	else if (it->committed)
		queue_close_attempt(it->attempt_id, "committed", it->sid);
	else if (!it->posted)
		queue_close_attempt(it->attempt_id, "refused", NULL);
	else if (it->sid[0] && kind->kept(it->sid))
		queue_close_attempt(it->attempt_id, "committed", it->sid);
	else
		queue_enqueue(kind->undo_job, 0, it->phone, it->sid, it->twilio_account_sid,
					  it->unresolved > 0 ? psprintf("{\"unresolved\": %d}", it->unresolved) : NULL,
					  it->attempt_id);
}

/*
 * A change rolled back: re-sync the number (a transfer also says where it
 * went, a Messaging Service assignment which service it touched) — unless its row rolled back too (a number bought and changed in one
 * transaction): the purchase's compensation undoes the whole number.
 */
static void
settle_change(const ChangeKind *kind, const Intent *it)
{
	if (!store_queue_number_exists(it->number_id))
		return;
	queue_enqueue(kind->undo_job, it->number_id, it->phone, NULL, NULL,
				it->twilio_account_sid[0]
				? psprintf("{\"%s\": \"%s\"}", kind->other_key ? kind->other_key : "other_account_sid",
						   it->twilio_account_sid) : NULL, 0);
}

/*
 * Settle one ended intent by its kind's rule, in a subtransaction: one that
 * cannot be settled (its error is logged) must not keep the others from
 * being settled.  Its slot is freed all the same — what it may have left at
 * Twilio is still covered by its open attempt, which reconcile settles.
 */
static void
settle_one(const Intent *it)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		const ChangeKind *kind = change_kind(it->kind);

		if (kind->creates)
			settle_creation(kind, it);
		else
			settle_change(kind, it);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ereport(WARNING,
				(errmsg("twilio_numbers: could not settle the %s of %s: %s",
						change_kind(it->kind)->name, it->phone, edata->message)));
		shmem_worker_note(WORKER_NOTE_ERROR, 0,
					   psprintf("settling %s %s: %s", change_kind(it->kind)->name, it->phone, edata->message));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * Backend side: have the SIDs Twilio answered written into these intents'
 * attempts, so that the proof names exactly what was created even if a
 * later change of the same transaction (an update, a transfer) makes the
 * resource look different, and wherever it moves.
 */
void
recorder_record_sids(const int *slots, int n)
{
	intents_request_sids(slots, n);
	if (!intents_wait_recorder(slots, n, RECORD_WAIT_MS))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not record what Twilio created"),
				 errdetail("The attempt recorder did not commit it within %d ms; the purchase is undone.",
						   RECORD_WAIT_MS),
				 errhint("Check that the \"twilio_numbers attempt recorder\" process runs "
						 "(pg_stat_activity) and the server log.")));
}

/*
 * Do the recorder's work in one transaction: the attempt requests
 * (ids[i] = the attempt_id done) and the ended intents, settled.
 */
static void
record_batch(const AttemptRequest *reqs, int n, int64 *ids, const Intent *ended, int nended)
{
	char	   *epoch;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "twilio_numbers: recording purchase attempts");

	epoch = recorder_epoch();
	for (int i = 0; i < n; i++)
	{
		const AttemptRequest *r = &reqs[i];

		if (r->op == ATTEMPT_OPEN)
			ids[i] = store_attempt_open(r->kind == INTENT_HOSTED ? "hosted_order" : "purchase", r->phone,
										r->twilio_account_sid, epoch, r->pid, r->deadline,
										config_fields_array(r->config_mask), r->config_md5);
		else
		{
			/* a SID written, or the attempt closed with its outcome */
			store_attempt_settle(r->attempt_id,
								 r->op == ATTEMPT_CLOSE ? (r->committed ? "committed" : "refused") : NULL,
								 r->sid);
			ids[i] = r->attempt_id;
		}
	}

	for (int i = 0; i < nended; i++)
		settle_one(&ended[i]);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

static void
recorder_exit(int code, Datum arg)
{
	intents_recorder_unregister();
}

/*
 * The recorder's loop: take all its work — attempts to open before a
 * request, SIDs Twilio answered, attempts of committed (or never sent)
 * creations to close — do it in one transaction, tell the backends and free
 * the closed ones' slots; sleep until the next request wakes it.
 */
void
recorder_main(Datum main_arg)
{
	MemoryContext cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	connect_to_database(CONNECT_RECORDER, "twilio_numbers attempt recorder");
	pgstat_report_appname("twilio_numbers attempt recorder");

	/* the attempt must be durable before Twilio hears of the purchase */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);

	cxt = AllocSetContextCreate(TopMemoryContext, "twilio_numbers recorder", ALLOCSET_DEFAULT_SIZES);
	intents_recorder_register();
	on_shmem_exit(recorder_exit, (Datum) 0);

	for (;;)
	{
		AttemptRequest reqs[RECORD_BATCH];
		int64		ids[RECORD_BATCH];
		Intent		ended[SETTLE_BATCH];
		int			ended_slots[SETTLE_BATCH];
		int			n;
		int			nended;

		connect_reload_if_pending();

		n = intents_recorder_work(reqs, RECORD_BATCH);
		nended = intents_ended(ended, ended_slots, SETTLE_BATCH);
		if (n > 0 || nended > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);
			volatile bool settled = false;

			PG_TRY();
			{
				record_batch(reqs, n, ids, ended, nended);
				settled = true;
			}
			PG_CATCH();
			{
				/* the backends are told (ids 0), the error logged, and we go on */
				MemoryContextSwitchTo(cxt);
				HOLD_INTERRUPTS();
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				RESUME_INTERRUPTS();
				pgstat_report_activity(STATE_IDLE, NULL);
				memset(ids, 0, sizeof(int64) * n);
			}
			PG_END_TRY();
			intents_recorder_done(reqs, ids, n);
			if (settled && nended > 0)
			{
				intents_free(ended_slots, nended);
				shmem_wake_worker();	/* jobs may have been queued */
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(cxt);
			continue;			/* more may have come in meanwhile */
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

PG_FUNCTION_INFO_V1(tn_epoch_sql);

/* _epoch(): the epoch attempts are recorded in now (reconcile compares). */
Datum
tn_epoch_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(recorder_epoch()));
}
