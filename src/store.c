/*
 * store.c — the C–SQL boundary: the one module that runs SQL against the
 * extension's tables.  Each function here calls one function of
 * sql/schema/ (defined beside the tables it reads and writes, where the
 * rules about them live) with typed arguments and hands back C values; the
 * rest of the C code calls these, never SPI with a table's name.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "errcodes.h"
#include "queue.h"
#include "store.h"

/* Arguments: a jsonb from its text; a text, (Datum) 0 for NULL (its null flag set by the caller). */
#define JSONB_ARG(text) DirectFunctionCall1(jsonb_in, CStringGetDatum(text))
#define TEXT_ARG(cstr) ((cstr) ? CStringGetTextDatum(cstr) : (Datum) 0)
/* An interval argument of ms milliseconds. */
#define MS_INTERVAL_ARG(ms) \
	DirectFunctionCall3(interval_in, CStringGetDatum(psprintf("%d ms", (ms))), \
						ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))

/*
 * Each call's plan, prepared on its first run and kept for the session (the
 * recorder, the queue runners and the price reads run the same calls again
 * and again).  Keyed by the call's text, which is a string constant at
 * every call site; the entry keeps the text and the argument types and is
 * prepared again if they differ.  PostgreSQL's plan cache re-plans a kept
 * plan when a function it calls is replaced (ALTER EXTENSION ... UPDATE, a
 * DROP and CREATE EXTENSION).
 */
#define STORE_PLAN_ARGS 16

typedef struct StorePlan
{
	const char *key;			/* the call's text, as passed (the hash key) */
	char	   *call;			/* a copy, to tell a reused pointer */
	int			nargs;
	Oid			types[STORE_PLAN_ARGS];
	SPIPlanPtr	plan;
} StorePlan;

static HTAB *store_plans = NULL;

static SPIPlanPtr
store_plan(const char *call, int nargs, const Oid *types)
{
	StorePlan  *e;
	bool		found;
	SPIPlanPtr	plan;

	if (nargs > STORE_PLAN_ARGS)
		elog(ERROR, "twilio_numbers: a call of more than %d arguments", STORE_PLAN_ARGS);
	if (store_plans == NULL)
	{
		HASHCTL		ctl = {0};

		ctl.keysize = sizeof(const char *);
		ctl.entrysize = sizeof(StorePlan);
		store_plans = hash_create("twilio_numbers store plans", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(store_plans, &call, HASH_ENTER, &found);
	if (found && e->plan != NULL && e->nargs == nargs && strcmp(e->call, call) == 0 &&
		memcmp(e->types, types, sizeof(Oid) * nargs) == 0)
		return e->plan;
	if (found && e->plan != NULL)
	{
		SPI_freeplan(e->plan);
		pfree(e->call);
	}
	e->plan = NULL;
	plan = SPI_prepare(call, nargs, (Oid *) types);
	if (plan == NULL)
		elog(ERROR, "twilio_numbers: could not prepare \"%s\": %s", call, SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	e->call = MemoryContextStrdup(TopMemoryContext, call);
	e->nargs = nargs;
	memcpy(e->types, types, sizeof(Oid) * nargs);
	e->plan = plan;
	return plan;
}

uint64
store_call(const char *call, int nargs, const Oid *types, const Datum *args,
		   const char *nulls, bool read_only, long limit)
{
	int			rc;

	rc = SPI_execute_plan(store_plan(call, nargs, types), (Datum *) args, nulls, read_only, limit);
	if (rc < 0)
		elog(ERROR, "twilio_numbers: could not run \"%s\": %s", call, SPI_result_code_string(rc));
	return SPI_processed;
}

char *
store_text(uint64 i, int n)
{
	return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, n);
}

Datum
store_datum(uint64 i, int n, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, n, isnull);
}

/* Row 0 of the last call as a composite Datum, for a function's result. */
static Datum
store_row(void)
{
	return PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
}

/* Column n of row i as a bool, false when null. */
static bool
store_bool(uint64 i, int n)
{
	bool		isnull;
	Datum		d = store_datum(i, n, &isnull);

	return !isnull && DatumGetBool(d);
}

/* ---- the work queue and its jobs (sql/schema/queue.sql) ---- */

/* A text argument, or SQL NULL when s is NULL or empty. */
static void
queue_text_arg(const char *s, Datum *arg, char *null)
{
	bool		none = s == NULL || s[0] == '\0';

	*arg = none ? (Datum) 0 : CStringGetTextDatum(s);
	*null = none ? 'n' : ' ';
}

/* Queue a job (inside the current transaction): _queue_enqueue. */
void
queue_enqueue(const char *kind, int64 number_id, const char *phone, const char *sid,
			  const char *account_sid, const char *payload, int64 attempt_id)
{
	Oid			types[7] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = CStringGetTextDatum(kind);
	args[1] = Int64GetDatum(number_id);
	nulls[1] = number_id ? ' ' : 'n';
	queue_text_arg(phone, &args[2], &nulls[2]);
	queue_text_arg(sid, &args[3], &nulls[3]);
	queue_text_arg(account_sid, &args[4], &nulls[4]);
	args[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload ? payload : "{}"));
	args[6] = Int64GetDatum(attempt_id);
	nulls[6] = attempt_id ? ' ' : 'n';
	store_call("SELECT twilio_numbers._queue_enqueue($1, $2, $3, $4, $5, $6, $7)",
			   7, types, args, nulls, false, 0);
}

/* Does a live row own this Twilio SID?  (_live_row_owns) */
bool
queue_live_row_owns(const char *sid)
{
	bool		isnull;

	store_call("SELECT twilio_numbers._live_row_owns($1)", 1, (Oid[]) {TEXTOID},
			   (Datum[]) {CStringGetTextDatum(sid)}, NULL, true, 1);
	return DatumGetBool(store_datum(0, 1, &isnull)) && !isnull;
}

/* Was the hosted order with this SID recorded by a committed transaction? */
bool
queue_hosted_order_committed(const char *sid)
{
	bool		isnull;

	store_call("SELECT twilio_numbers._hosted_order_committed($1)", 1, (Oid[]) {TEXTOID},
			   (Datum[]) {CStringGetTextDatum(sid)}, NULL, true, 1);
	return DatumGetBool(store_datum(0, 1, &isnull)) && !isnull;
}

/* Close a purchase attempt with its outcome (0: none): _attempt_close. */
void
queue_close_attempt(int64 attempt_id, const char *outcome, const char *sid)
{
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};

	if (attempt_id == 0)
		return;
	args[0] = Int64GetDatum(attempt_id);
	args[1] = CStringGetTextDatum(outcome);
	queue_text_arg(sid, &args[2], &nulls[2]);
	store_call("SELECT twilio_numbers._attempt_close($1, $2, $3)", 3, (Oid[]) {INT8OID, TEXTOID, TEXTOID},
			   args, nulls, false, 0);
}

/* In how many ms the next runnable job is due (<= 0: now); false when none is queued. */
bool
store_queue_next_due_ms(bool writes_paused, int64 *ms)
{
	bool		isnull;
	Datum		d;

	store_call("SELECT twilio_numbers._queue_next_due_ms($1)", 1, (Oid[]) {BOOLOID},
			   (Datum[]) {BoolGetDatum(writes_paused)}, NULL, true, 1);
	d = store_datum(0, 1, &isnull);
	if (isnull)
		return false;
	*ms = DatumGetInt64(d);
	return true;
}

/*
 * Claim the next due job in this transaction (_queue_claim: urgency order,
 * SKIP LOCKED, the number's advisory lock; tries jobs of busy numbers at
 * most).  False when none can run now.
 */
bool
store_queue_claim(bool writes_paused, int tries, struct Job *job)
{
	bool		isnull;
	Datum		d;

	if (store_call("SELECT job_id, kind, number_id, phone_number, twilio_sid, twilio_account_sid, "
				   "payload::text, attempts, attempt_id, created_at "
				   "FROM twilio_numbers._queue_claim($1, $2)",
				   2, (Oid[]) {BOOLOID, INT4OID}, (Datum[]) {BoolGetDatum(writes_paused), Int32GetDatum(tries)},
				   NULL, false, 1) != 1)
		return false;
	job->job_id = DatumGetInt64(store_datum(0, 1, &isnull));
	job->kind = store_text(0, 2);
	d = store_datum(0, 3, &isnull);
	job->number_id = isnull ? 0 : DatumGetInt64(d);
	job->phone = store_text(0, 4);
	job->sid = store_text(0, 5);
	job->account_sid = store_text(0, 6);
	job->payload = store_text(0, 7);
	job->attempts = DatumGetInt32(store_datum(0, 8, &isnull));
	d = store_datum(0, 9, &isnull);
	job->attempt_id = isnull ? 0 : DatumGetInt64(d);
	job->created_at = DatumGetTimestampTz(store_datum(0, 10, &isnull));
	return true;
}

/* A job is done (note: what it says about it, or NULL). */
void
store_queue_done(int64 job_id, const char *note)
{
	Datum		args[2] = {Int64GetDatum(job_id), note ? CStringGetTextDatum(note) : (Datum) 0};

	store_call("SELECT twilio_numbers._queue_done($1, $2)", 2, (Oid[]) {INT8OID, TEXTOID}, args,
			   note ? "  " : " n", false, 0);
}

/*
 * A job failed: retried with backoff from base_ms to max_ms, or a dead
 * letter after max_attempts (_queue_failed; an outage is not counted).
 * True when it has just become a dead letter.
 */
bool
store_queue_failed(int64 job_id, const char *error, bool outage, double base_ms, double max_ms, int max_attempts)
{
	Oid			types[6] = {INT8OID, TEXTOID, BOOLOID, FLOAT8OID, FLOAT8OID, INT4OID};
	Datum		args[6];
	char		nulls[6] = {' ', error ? ' ' : 'n', ' ', ' ', ' ', ' '};
	bool		isnull;

	args[0] = Int64GetDatum(job_id);
	args[1] = error ? CStringGetTextDatum(error) : (Datum) 0;
	args[2] = BoolGetDatum(outage);
	args[3] = Float8GetDatum(base_ms);
	args[4] = Float8GetDatum(max_ms);
	args[5] = Int32GetDatum(max_attempts);
	store_call("SELECT twilio_numbers._queue_failed($1, $2, $3, $4, $5, $6)", 6, types, args, nulls, false, 1);
	return DatumGetBool(store_datum(0, 1, &isnull)) && !isnull;
}

/* A poll that is not finished: run it again after again_ms, no failure. */
void
store_queue_again(int64 job_id, long again_ms)
{
	store_call("SELECT twilio_numbers._queue_again($1, $2)", 2, (Oid[]) {INT8OID, FLOAT8OID},
			   (Datum[]) {Int64GetDatum(job_id), Float8GetDatum((double) again_ms)}, NULL, false, 0);
}

/* The job only watches now, until until (its payload says so). */
void
store_queue_watching(int64 job_id, TimestampTz until)
{
	store_call("SELECT twilio_numbers._queue_watching($1, $2)", 2, (Oid[]) {INT8OID, TIMESTAMPTZOID},
			   (Datum[]) {Int64GetDatum(job_id), TimestampTzGetDatum(until)}, NULL, false, 0);
}

/* The Twilio accounts this database manages, the main one first (_managed_accounts). */
List *
store_queue_managed_accounts(const char *main_account)
{
	List	   *accounts = NIL;
	uint64		n;

	n = store_call("SELECT unnest(twilio_numbers._managed_accounts($1))", 1, (Oid[]) {TEXTOID},
				   (Datum[]) {CStringGetTextDatum(main_account)}, NULL, true, 0);
	for (uint64 i = 0; i < n; i++)
		accounts = lappend(accounts, store_text(i, 1));
	return accounts;
}

/* A release is done at Twilio: the row (releasing) is released. */
void
store_queue_number_released(int64 number_id)
{
	store_call("SELECT twilio_numbers._number_released($1)", 1, (Oid[]) {INT8OID},
			   (Datum[]) {Int64GetDatum(number_id)}, NULL, false, 0);
}

/* Is there a row (of any status) for this number_id? */
bool
store_queue_number_exists(int64 number_id)
{
	bool		isnull;

	store_call("SELECT twilio_numbers._number_exists($1)", 1, (Oid[]) {INT8OID},
			   (Datum[]) {Int64GetDatum(number_id)}, NULL, true, 1);
	return DatumGetBool(store_datum(0, 1, &isnull)) && !isnull;
}

/* A number's row for a re-sync, locked FOR UPDATE; false when there is none. */
bool
store_queue_number_for_resync(int64 number_id, StoreResyncRow *row)
{
	if (store_call("SELECT twilio_sid, twilio_account_sid, status, address_sid, bundle_sid "
				   "FROM twilio_numbers._number_for_resync($1)", 1, (Oid[]) {INT8OID},
				   (Datum[]) {Int64GetDatum(number_id)}, NULL, false, 1) == 0)
		return false;
	row->sid = store_text(0, 1);
	row->account_sid = store_text(0, 2);
	row->status = store_text(0, 3);
	row->address_sid = store_text(0, 4);
	row->bundle_sid = store_text(0, 5);
	return true;
}

/* What of the row's configuration Twilio (its resource) differs in: _config_to_push. */
Jsonb *
store_queue_config_to_push(int64 number_id, Jsonb *twilio)
{
	bool		isnull;

	store_call("SELECT twilio_numbers._config_to_push($1, $2)", 2, (Oid[]) {INT8OID, JSONBOID},
			   (Datum[]) {Int64GetDatum(number_id), PointerGetDatum(twilio)}, NULL, true, 1);
	return DatumGetJsonbPCopy(store_datum(0, 1, &isnull));
}

/* Remember Twilio's view of a number (its resource). */
void
store_queue_number_twilio(int64 number_id, Jsonb *twilio)
{
	store_call("SELECT twilio_numbers._number_twilio_seen($1, $2)", 2, (Oid[]) {INT8OID, JSONBOID},
			   (Datum[]) {Int64GetDatum(number_id), PointerGetDatum(twilio)}, NULL, false, 0);
}

/*
 * What undoing an attempt's creation goes by (_attempt_undo_facts, with the
 * job's payload and SID); false when the attempt has no row.
 */
bool
store_attempt_undo_facts(int64 attempt_id, const char *payload, const char *sid, StoreAttemptFacts *f)
{
	Oid			types[3] = {INT8OID, JSONBOID, TEXTOID};
	Datum		args[3];
	Datum		fields;
	bool		isnull;

	args[0] = Int64GetDatum(attempt_id);
	args[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload ? payload : "{}"));
	args[2] = CStringGetTextDatum(sid ? sid : "");
	if (store_call("SELECT twilio_account_sid, started_at, deadline, request_fields, request_md5, unresolved, "
				   "made, sid_done, committed FROM twilio_numbers._attempt_undo_facts($1, $2, $3)",
				   3, types, args, NULL, true, 1) != 1)
		return false;
	f->account_sid = store_text(0, 1);
	f->started = DatumGetTimestampTz(store_datum(0, 2, &isnull));
	f->deadline = DatumGetTimestampTz(store_datum(0, 3, &isnull));
	fields = store_datum(0, 4, &isnull);
	f->fields = isnull ? (Datum) 0 : PointerGetDatum(DatumGetArrayTypePCopy(fields));
	f->md5 = store_text(0, 5);
	f->unresolved = DatumGetInt32(store_datum(0, 6, &isnull));
	f->made = DatumGetInt32(store_datum(0, 7, &isnull));
	f->sid_done = DatumGetBool(store_datum(0, 8, &isnull));
	f->committed = DatumGetBool(store_datum(0, 9, &isnull));
	return true;
}

/* Add sid to what the attempt made (0: none). */
void
store_attempt_made(int64 attempt_id, const char *sid)
{
	if (attempt_id == 0)
		return;
	store_call("SELECT twilio_numbers._attempt_made($1, $2)", 2, (Oid[]) {INT8OID, TEXTOID},
			   (Datum[]) {Int64GetDatum(attempt_id), CStringGetTextDatum(sid)}, NULL, false, 0);
}

/* Open an attempt before its request is sent (the recorder): its attempt_id. */
int64
store_attempt_open(const char *kind, const char *phone, const char *account_sid, const char *recorded_in,
				   int pid, TimestampTz deadline, Datum fields, const char *md5)
{
	Oid			types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTOID};
	Datum		args[8];
	bool		isnull;

	args[0] = CStringGetTextDatum(kind);
	args[1] = CStringGetTextDatum(phone);
	args[2] = CStringGetTextDatum(account_sid);
	args[3] = CStringGetTextDatum(recorded_in);
	args[4] = Int32GetDatum(pid);
	args[5] = TimestampTzGetDatum(deadline);
	args[6] = fields;
	args[7] = CStringGetTextDatum(md5);
	if (store_call("SELECT twilio_numbers._attempt_open($1, $2, $3, $4, $5, $6, $7, $8)",
				   8, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not insert into purchase_attempts");
	return DatumGetInt64(store_datum(0, 1, &isnull));
}

/*
 * The recorder writes the SID Twilio answered into an open attempt
 * ("" : none), and closes it with outcome (NULL: still open).
 */
void
store_attempt_settle(int64 attempt_id, const char *outcome, const char *sid)
{
	Datum		args[3];
	char		nulls[3] = {' ', outcome ? ' ' : 'n', ' '};

	args[0] = Int64GetDatum(attempt_id);
	args[1] = outcome ? CStringGetTextDatum(outcome) : (Datum) 0;
	args[2] = CStringGetTextDatum(sid);
	store_call("SELECT twilio_numbers._attempt_settle($1, $2, $3)", 3, (Oid[]) {INT8OID, TEXTOID, TEXTOID},
			   args, nulls, false, 0);
}

/*
 * A billing run by the worker starts as of as_of (_billing_run_start): its
 * run_id, and its batches' ranges (palloc'd in the caller's context).
 */
int64
store_billing_run_start(TimestampTz as_of, int batch_size, int *nbatches, int64 **lo, int64 **hi)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum	   *elems;
	int			n;
	bool		isnull;
	int64		run_id;

	store_call("SELECT run_id, los, his FROM twilio_numbers._billing_run_start($1, 'worker', $2)",
			   2, (Oid[]) {TIMESTAMPTZOID, INT4OID},
			   (Datum[]) {TimestampTzGetDatum(as_of), Int32GetDatum(batch_size)}, NULL, false, 1);
	run_id = DatumGetInt64(store_datum(0, 1, &isnull));
	deconstruct_array(DatumGetArrayTypeP(store_datum(0, 2, &isnull)), INT8OID, 8, true, TYPALIGN_DOUBLE,
					  &elems, NULL, &n);
	*nbatches = n;
	*lo = MemoryContextAlloc(caller, sizeof(int64) * Max(n, 1));
	*hi = MemoryContextAlloc(caller, sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		(*lo)[i] = DatumGetInt64(elems[i]);
	deconstruct_array(DatumGetArrayTypeP(store_datum(0, 3, &isnull)), INT8OID, 8, true, TYPALIGN_DOUBLE,
					  &elems, NULL, &n);
	for (int i = 0; i < n && i < *nbatches; i++)
		(*hi)[i] = DatumGetInt64(elems[i]);
	return run_id;
}

/* One batch of a billing run, in the caller's transaction (grace: the grace period). */
void
store_billing_run_batch(int64 run_id, int64 lo, int64 hi, TimestampTz as_of, Interval *grace)
{
	Oid			types[5] = {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INTERVALOID};
	Datum		args[5] = {Int64GetDatum(run_id), Int64GetDatum(lo), Int64GetDatum(hi), TimestampTzGetDatum(as_of),
	IntervalPGetDatum(grace)};

	store_call("SELECT twilio_numbers._billing_run_batch($1, $2, $3, $4, $5)", 5, types, args, NULL, false, 0);
}

/* A billing run is finished (and announced). */
void
store_billing_run_finish(int64 run_id)
{
	store_call("SELECT twilio_numbers._billing_run_finish($1)", 1, (Oid[]) {INT8OID},
			   (Datum[]) {Int64GetDatum(run_id)}, NULL, false, 0);
}

/* A billing run failed, with why. */
void
store_billing_run_failed(int64 run_id, const char *error)
{
	store_call("SELECT twilio_numbers._billing_run_failed($1, $2)", 2, (Oid[]) {INT8OID, TEXTOID},
			   (Datum[]) {Int64GetDatum(run_id), CStringGetTextDatum(error)}, NULL, false, 0);
}

/* The worker's runs a killed worker left running are over. */
void
store_billing_runs_interrupted(void)
{
	store_call("SELECT twilio_numbers._billing_runs_interrupted()", 0, NULL, NULL, NULL, false, 0);
}

/* The installed version of the extension (pg_extension), NULL when it is not installed here. */
char *
store_extension_version(void)
{
	if (store_call("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'twilio_numbers'",
				   0, NULL, NULL, NULL, true, 1) != 1)
		return NULL;
	return store_text(0, 1);
}

/* The incarnation's status ("live", "held", "detached"...): _incarnation_status. */
char *
store_incarnation_status(bool follow_promotion)
{
	if (store_call("SELECT twilio_numbers._incarnation_status($1)", 1, (Oid[]) {BOOLOID},
				   (Datum[]) {BoolGetDatum(follow_promotion)}, NULL, false, 1) != 1)
		elog(ERROR, "could not read twilio_numbers.incarnation");
	return store_text(0, 1);
}

/* What the database was live as and what it is now, in words; NULL when unknown. */
char *
store_incarnation_described(void)
{
	if (store_call("SELECT twilio_numbers._incarnation_described()", 0, NULL, NULL, NULL, true, 1) != 1)
		return NULL;
	return store_text(0, 1);
}

/*
 * What DROP EXTENSION would lose: live numbers, ledger entries, pending
 * jobs and the balances' total (text).  The one statement here that reads
 * tables rather than calling a function of the schema: DROP EXTENSION runs
 * with this library whatever version the schema is at (an ALTER EXTENSION
 * UPDATE not yet run), so it reads only what every version has — and spells
 * the live condition, as live_numbers is 0.4's.
 */
void
store_drop_guard_counts(int64 *live, int64 *entries, int64 *pending, char **balance)
{
	bool		isnull;

	if (store_call("SELECT (SELECT count(*) FROM twilio_numbers.owned_numbers WHERE status <> 'released'), "
				   "(SELECT count(*) FROM twilio_numbers.ledger), "
				   "(SELECT count(*) FROM twilio_numbers.work_queue WHERE status = 'pending'), "
				   "(SELECT coalesce(sum(balance), 0)::text FROM twilio_numbers.accounts)",
				   0, NULL, NULL, NULL, true, 1) != 1)
		return;
	*live = DatumGetInt64(store_datum(0, 1, &isnull));
	*entries = DatumGetInt64(store_datum(0, 2, &isnull));
	*pending = DatumGetInt64(store_datum(0, 3, &isnull));
	*balance = store_text(0, 4);
}

/* The schema, after the extension was dropped, when it is empty (errors when not). */
void
store_drop_schema(void)
{
	SPI_execute("DROP SCHEMA twilio_numbers RESTRICT", false, 0);
}


/* ---- purchases, attempts, hosted orders, numbers changed in a transaction ---- */

/* The account's currency, status and Twilio account (NULL: the main one); false if none. */
bool
store_account(int64 account_id, char **currency, char **status, char **twilio_account_sid)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(account_id)};

	if (store_call("SELECT * FROM twilio_numbers._account($1)", 1, types, args, NULL, true, 1) == 0)
		return false;
	*currency = store_text(0, 1);
	*status = store_text(0, 2);
	*twilio_account_sid = store_text(0, 3);
	return true;
}

/*
 * The account's balance and credit limit (numeric), read with a fresh
 * snapshot — what is committed now, never the caller's older snapshot.
 */
void
store_account_funds(int64 account_id, Datum *balance, Datum *credit_limit)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(account_id)};
	SPIPlanPtr	plan;
	bool		isnull;

	plan = SPI_prepare("SELECT * FROM twilio_numbers._account_funds($1)", 1, types);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, args, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the balance of account " INT64_FORMAT, account_id);
	*balance = store_datum(0, 1, &isnull);
	*credit_limit = store_datum(0, 2, &isnull);
	SPI_freeplan(plan);
}

/* Map the account to a Twilio account (NULL: the main one); its new row. */
SPITupleTable *
store_account_map(int64 account_id, const char *twilio_account_sid)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(account_id), TEXT_ARG(twilio_account_sid)};
	char		nulls[2] = {' ', twilio_account_sid ? ' ' : 'n'};

	if (store_call("SELECT * FROM twilio_numbers._account_map($1, $2)", 2, types, args, nulls, false, 1) != 1)
		elog(ERROR, "could not map account " INT64_FORMAT, account_id);
	return SPI_tuptable;
}

/* Raise unless amount is money (_check_money's rules). */
void
store_check_money(const char *name, Datum amount, bool positive)
{
	Oid			types[3] = {TEXTOID, NUMERICOID, BOOLOID};
	Datum		args[3] = {CStringGetTextDatum(name), amount, BoolGetDatum(positive)};

	(void) store_call("SELECT twilio_numbers._check_money($1, $2, $3)", 3, types, args, NULL, true, 1);
}

/*
 * Is one of the numbers live here (or, orders_too, in a hosted order on its
 * way)?  Then *phone is it and *taken says by what ("owned by account 7").
 */
bool
store_number_taken(char **phones, int n, bool orders_too, char **phone, char **taken)
{
	Oid			types[2] = {TEXTARRAYOID, BOOLOID};
	Datum		args[2];
	Datum	   *elems = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(phones[i]);
	args[0] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[1] = BoolGetDatum(orders_too);
	if (store_call("SELECT * FROM twilio_numbers._number_taken($1, $2)", 2, types, args, NULL, true, 1) == 0)
		return false;
	*phone = store_text(0, 1);
	*taken = store_text(0, 2);
	return true;
}

/* The rows and ledger entries of a purchase (_purchase_record); the new rows. */
SPITupleTable *
store_purchase_record(int64 account_id, const char *numbers_json)
{
	Oid			types[2] = {INT8OID, JSONBOID};
	Datum		args[2] = {Int64GetDatum(account_id), JSONB_ARG(numbers_json)};

	(void) store_call("SELECT * FROM twilio_numbers._purchase_record($1, $2)", 2, types, args, NULL, false, 0);
	return SPI_tuptable;
}

/*
 * Could the resource have been created by an attempt started at started,
 * over by deadline, that sent the fields (text[], 0: unknown) whose
 * fingerprint is md5 — and by nothing else known here (_created_by_attempt)?
 */
bool
store_created_by_attempt(const char *resource_json, const char *phone, const char *twilio_account_sid,
						 TimestampTz started, TimestampTz deadline, Datum fields, const char *md5)
{
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTOID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', fields ? ' ' : 'n', md5 && md5[0] ? ' ' : 'n'};
	bool		isnull;
	Datum		made;

	args[0] = CStringGetTextDatum(resource_json);
	args[1] = CStringGetTextDatum(phone);
	args[2] = CStringGetTextDatum(twilio_account_sid);
	args[3] = TimestampTzGetDatum(started);
	args[4] = TimestampTzGetDatum(deadline);
	args[5] = fields;
	args[6] = md5 && md5[0] ? CStringGetTextDatum(md5) : (Datum) 0;
	if (store_call("SELECT twilio_numbers._created_by_attempt($1::jsonb, $2, $3, $4, $5, $6, $7)",
				   7, types, args, nulls, true, 1) != 1)
		elog(ERROR, "could not compare the resource with the attempt");
	made = store_datum(0, 1, &isnull);
	return !isnull && DatumGetBool(made);
}

/* The row of an adopted number and its first charge (_adopt_record); the row. */
SPITupleTable *
store_adopt_record(int64 account_id, const char *resource_json, const char *number_type, const char *iso_country,
				   Datum monthly_price, const char *currency, bool period_paid)
{
	Oid			types[7] = {INT8OID, JSONBOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, BOOLOID};
	Datum		args[7];

	args[0] = Int64GetDatum(account_id);
	args[1] = JSONB_ARG(resource_json);
	args[2] = CStringGetTextDatum(number_type);
	args[3] = CStringGetTextDatum(iso_country);
	args[4] = monthly_price;
	args[5] = CStringGetTextDatum(currency);
	args[6] = BoolGetDatum(period_paid);
	if (store_call("SELECT * FROM twilio_numbers._adopt_record($1, $2, $3, $4, $5, $6, $7)",
				   7, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not record the adopted number");
	return SPI_tuptable;
}

/* The currency hosting the number is priced in (_hosted_price raises if none). */
char *
store_hosted_price_currency(const char *phone)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(phone)};

	if (store_call("SELECT currency FROM twilio_numbers._hosted_price($1)", 1, types, args, NULL, true, 1) != 1)
		elog(ERROR, "could not price hosting");
	return store_text(0, 1);
}

/*
 * The row of an order Twilio has just created, its first poll due after
 * poll_after_ms (_hosted_order_record); the row.
 */
SPITupleTable *
store_hosted_order_record(int64 account_id, const char *resource_json, const char *ours_json, int poll_after_ms)
{
	Oid			types[4] = {INT8OID, JSONBOID, JSONBOID, INTERVALOID};
	Datum		args[4] = {Int64GetDatum(account_id), JSONB_ARG(resource_json), JSONB_ARG(ours_json),
		MS_INTERVAL_ARG(poll_after_ms)};

	if (store_call("SELECT * FROM twilio_numbers._hosted_order_record($1, $2, $3, $4)",
				   4, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not record the hosted order");
	return SPI_tuptable;
}

/* Lock an order; its account and status, or false if there is none. */
bool
store_hosted_order_lock(const char *order_sid, int64 *account_id, char **status)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(order_sid)};
	bool		isnull;

	if (store_call("SELECT * FROM twilio_numbers._hosted_order_lock($1)", 1, types, args, NULL, false, 1) == 0)
		return false;
	*account_id = DatumGetInt64(store_datum(0, 1, &isnull));
	*status = store_text(0, 2);
	return true;
}

/*
 * What Twilio said of an order (jsonb Datum, 0: it has no such order) and,
 * once completed, of its number (0: not fetched): _hosted_order_seen.
 * Returns the order's status now (NULL: no such order here).
 */
char *
store_hosted_order_seen(const char *order_sid, Datum order, Datum number)
{
	Oid			types[3] = {TEXTOID, JSONBOID, JSONBOID};
	Datum		args[3] = {CStringGetTextDatum(order_sid), order, number};
	char		nulls[3] = {' ', order ? ' ' : 'n', number ? ' ' : 'n'};

	if (store_call("SELECT twilio_numbers._hosted_order_seen($1, $2, $3)", 3, types, args, nulls, false, 1) != 1)
		elog(ERROR, "could not record the hosted order");
	return store_text(0, 1);
}

/* An order's row. */
SPITupleTable *
store_hosted_order(const char *order_sid)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(order_sid)};

	if (store_call("SELECT * FROM twilio_numbers._hosted_order($1)", 1, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not read hosted order %s", order_sid);
	return SPI_tuptable;
}

/* Count a poll of an order on its way: polls in a row with nothing changed. */
int
store_hosted_order_polled(const char *order_sid)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(order_sid)};
	bool		isnull;
	Datum		polls;

	if (store_call("SELECT twilio_numbers._hosted_order_polled($1)", 1, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not update hosted order %s", order_sid);
	polls = store_datum(0, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(polls);
}

/* A live number of the account, locked for the transaction (_live_number). */
void
store_live_number(int64 account_id, const char *phone, LiveNumber *ln)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(account_id), CStringGetTextDatum(phone)};
	bool		isnull;

	if (store_call("SELECT number_id, phone_number, twilio_sid, twilio_account_sid, trunk_sid, currency "
				   "FROM twilio_numbers._live_number($1, $2)", 2, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not read owned_numbers");
	ln->number_id = DatumGetInt64(store_datum(0, 1, &isnull));
	ln->phone = store_text(0, 2);
	ln->sid = store_text(0, 3);
	ln->account_sid = store_text(0, 4);
	ln->trunk_sid = store_text(0, 5);
	ln->currency = store_text(0, 6);
}

/* Copy Twilio's view of a number into its row (_apply_twilio). */
void
store_apply_twilio(int64 number_id, const char *resource_json)
{
	Oid			types[2] = {INT8OID, JSONBOID};
	Datum		args[2] = {Int64GetDatum(number_id), JSONB_ARG(resource_json)};

	(void) store_call("SELECT twilio_numbers._apply_twilio($1, $2)", 2, types, args, NULL, false, 0);
}

/* A number's row (read after the caller's changes). */
SPITupleTable *
store_owned_number(int64 number_id)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(number_id)};

	if (store_call("SELECT * FROM twilio_numbers._owned_number($1)", 1, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not read owned_numbers");
	return SPI_tuptable;
}

/* The trunk the number is on (NULL: none). */
void
store_set_trunk(int64 number_id, const char *trunk_sid)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(number_id), TEXT_ARG(trunk_sid)};
	char		nulls[2] = {' ', trunk_sid ? ' ' : 'n'};

	(void) store_call("SELECT twilio_numbers._set_trunk($1, $2)", 2, types, args, nulls, false, 0);
}

/*
 * What the number needs to move to another Twilio account; not read-only,
 * so that it reads with a snapshot taken after the caller's row lock (an
 * assignment that committed while it waited is seen).
 */
void
store_transfer_needs(int64 number_id, TransferNeeds *needs)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(number_id)};

	if (store_call("SELECT * FROM twilio_numbers._transfer_needs($1)", 1, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not read owned_numbers");
	needs->messaging_service_sid = store_text(0, 1);
	needs->address_sid = store_text(0, 2);
	needs->bundle_sid = store_text(0, 3);
	needs->iso_country = store_text(0, 4);
	needs->number_type = store_text(0, 5);
}

/* The number changes hands (ledger-neutral). */
void
store_transfer_record(int64 number_id, int64 to_account_id)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(number_id), Int64GetDatum(to_account_id)};

	(void) store_call("SELECT twilio_numbers._transfer_record($1, $2)", 2, types, args, NULL, false, 0);
}



/* ---- reconcile (sql/schema/reconcile.sql) ---- */

/* Copy column n of the last call's row 0 out of SPI's memory (a varlena: an array). */
static Datum
store_reconcile_copy(int n)
{
	bool		isnull;
	Datum		d = store_datum(0, n, &isnull);

	Assert(!isnull);
	return PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
}

/* _reconcile_begin: what a pass reads before the listing, copied out of SPI's memory. */
void
store_reconcile_begin(const char *main_account, Datum *live, Datum *attempts, Datum *accounts)
{
	Datum		args[1] = {CStringGetTextDatum(main_account)};

	store_call("SELECT live, attempts, coalesce(accounts, '{}') FROM twilio_numbers._reconcile_begin($1)",
			   1, (Oid[]) {TEXTOID}, args, NULL, false, 1);
	*live = store_reconcile_copy(1);
	*attempts = store_reconcile_copy(2);
	*accounts = store_reconcile_copy(3);
	SPI_freetuptable(SPI_tuptable);
}

/* _reconcile_listed: one listing page into the work table (its tuple table freed at once). */
int
store_reconcile_listed(Jsonb *page)
{
	Datum		args[1] = {JsonbPGetDatum(page)};
	bool		isnull;
	int			n;

	store_call("SELECT twilio_numbers._reconcile_listed($1)", 1, (Oid[]) {JSONBOID}, args, NULL, false, 1);
	n = DatumGetInt32(store_datum(0, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/* _reconcile_unseen: the live rows no listing showed, copied out (the caller makes more calls). */
int
store_reconcile_unseen(Datum live, const char *main_account, char ***sids, char ***homes)
{
	Datum		args[2] = {live, CStringGetTextDatum(main_account)};
	uint64		n;

	/* not read-only: it must see what this pass wrote into the work table */
	n = store_call("SELECT twilio_sid, twilio_account_sid FROM twilio_numbers._reconcile_unseen($1, $2)",
				   2, (Oid[]) {INT8ARRAYOID, TEXTOID}, args, NULL, false, 0);
	*sids = palloc(sizeof(char *) * Max(n, 1));
	*homes = palloc(sizeof(char *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		(*sids)[i] = store_text(i, 1);
		(*homes)[i] = store_text(i, 2);
	}
	SPI_freetuptable(SPI_tuptable);
	return (int) n;
}

/* _reconcile_found: a look-up's result (one call per unseen row: tuple table freed each time). */
void
store_reconcile_found(const char *sid, Jsonb *resource)
{
	Datum		args[2] = {CStringGetTextDatum(sid), resource ? JsonbPGetDatum(resource) : (Datum) 0};
	char		nulls[2] = {' ', resource ? ' ' : 'n'};

	store_call("SELECT twilio_numbers._reconcile_found($1, $2)", 2, (Oid[]) {TEXTOID, JSONBOID}, args, nulls,
			   false, 1);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * _reconcile: compare and act, through a cursor whose first fetch runs it
 * (a pass that finds a whole account of numbers must not hold every drift
 * row it recorded at once).
 */
Portal
store_reconcile_compare(Datum live, Datum listed, Jsonb *failed, Datum attempts,
						const char *main_account, const char *epoch)
{
	Datum		args[6] = {live, listed, JsonbPGetDatum(failed), attempts, CStringGetTextDatum(main_account),
	CStringGetTextDatum(epoch)};
	Portal		cursor;

	cursor = SPI_cursor_open_with_args(NULL, "SELECT * FROM twilio_numbers._reconcile($1, $2, $3, $4, $5, $6)", 6,
									   (Oid[]) {INT8ARRAYOID, TEXTARRAYOID, JSONBOID, INT8ARRAYOID, TEXTOID,
									   TEXTOID}, args, NULL, false, 0);
	if (cursor == NULL)
		elog(ERROR, "twilio_numbers: could not run _reconcile: %s", SPI_result_code_string(SPI_result));
	return cursor;
}

/* The cursor's next drift rows, at most n (*got of them; 0 at the end). */
SPITupleTable *
store_reconcile_fetch(Portal cursor, long n, uint64 *got)
{
	SPI_cursor_fetch(cursor, true, n);
	*got = SPI_processed;
	return SPI_tuptable;
}

/* Done with the cursor. */
void
store_reconcile_close(Portal cursor)
{
	SPI_cursor_close(cursor);
}


/* ---- addresses, bundles, Messaging Services, prices ---- */

/* _address_seen: the addresses row as Twilio answered, for the caller's result. */
Datum
store_address_seen(int64 account_id, Jsonb *r, const char *copied_from)
{
	Oid			types[3] = {INT8OID, JSONBOID, TEXTOID};
	Datum		args[3] = {Int64GetDatum(account_id), JsonbPGetDatum(r), TEXT_ARG(copied_from)};
	char		nulls[3] = {' ', ' ', copied_from ? ' ' : 'n'};

	if (store_call("SELECT * FROM twilio_numbers._address_seen($1, $2, $3)", 3, types, args, nulls,
				   false, 1) != 1)
		elog(ERROR, "could not record the address");
	return store_row();
}

/* _address_lock: the Twilio account of the account's address, locked; NULL when it has none such. */
char *
store_address_lock(int64 account_id, const char *address_sid)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(account_id), CStringGetTextDatum(address_sid)};

	store_call("SELECT twilio_numbers._address_lock($1, $2)", 2, types, args, NULL, false, 1);
	return store_text(0, 1);
}

/* _addresses_lock: the account's addresses and their Twilio accounts, locked, oldest first. */
int
store_addresses_lock(int64 account_id, char ***sids, char ***homes)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(account_id)};
	int			n = (int) store_call("SELECT * FROM twilio_numbers._addresses_lock($1)", 1, types, args, NULL,
									 false, 0);

	*sids = palloc(sizeof(char *) * (n + 1));
	*homes = palloc(sizeof(char *) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		(*sids)[i] = store_text(i, 1);
		(*homes)[i] = store_text(i, 2);
	}
	return n;
}

/* _address_dependents: the live numbers naming an address, as "a, b", and how many. */
char *
store_address_dependents(const char *address_sid, int *n)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(address_sid)};

	store_call("SELECT array_to_string(d, ', '), cardinality(d) FROM twilio_numbers._address_dependents($1) d",
			   1, types, args, NULL, false, 1);
	*n = atoi(store_text(0, 2));
	return store_text(0, 1);
}

/* _address_forget: the deleted row, if there was one. */
Datum
store_address_forget(const char *address_sid, bool *found)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(address_sid)};

	*found = store_call("SELECT * FROM twilio_numbers._address_forget($1)", 1, types, args, NULL, false, 1) > 0;
	return *found ? store_row() : (Datum) 0;
}

/* _address_copy_of: an address with the same content there already, or NULL. */
char *
store_address_copy_of(const char *address_sid, int64 account_id, const char *twilio_account_sid)
{
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		args[3] = {CStringGetTextDatum(address_sid), Int64GetDatum(account_id),
	CStringGetTextDatum(twilio_account_sid)};

	store_call("SELECT twilio_numbers._address_copy_of($1, $2, $3)", 3, types, args, NULL, false, 1);
	return store_text(0, 1);
}

/* _regulations_cached: the cache row while fresh (ttl_s from pricing_ttl_s). */
Datum
store_bundle_regulations_cached(const char *iso, const char *type, const char *end_user_type, int ttl_s,
								bool *found)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[4] = {CStringGetTextDatum(iso), CStringGetTextDatum(type), CStringGetTextDatum(end_user_type),
	Int32GetDatum(ttl_s)};

	*found = store_call("SELECT * FROM twilio_numbers._regulations_cached($1, $2, $3, $4)", 4, types, args, NULL,
						false, 1) > 0;
	return *found ? store_row() : (Datum) 0;
}

/* _regulations_save: the cache row written. */
Datum
store_bundle_regulations_save(const char *iso, const char *type, const char *end_user_type, Jsonb *regulations,
							  const char *address_requirements)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		args[5] = {CStringGetTextDatum(iso), CStringGetTextDatum(type), CStringGetTextDatum(end_user_type),
	JsonbPGetDatum(regulations), TEXT_ARG(address_requirements)};
	char		nulls[5] = {' ', ' ', ' ', ' ', address_requirements ? ' ' : 'n'};

	if (store_call("SELECT * FROM twilio_numbers._regulations_save($1, $2, $3, $4, $5)", 5, types, args, nulls,
				   false, 1) != 1)
		elog(ERROR, "could not cache the regulations");
	return store_row();
}

/*
 * _bundle_seen: records a bundle Twilio showed (history, NOTIFY, the next
 * poll after poll_after_ms); its status now.
 */
char *
store_bundle_seen(int64 account_id, const char *bundle_sid, Jsonb *r, Jsonb *reg, const char *cloned_from,
				  int poll_after_ms)
{
	Oid			types[6] = {INT8OID, TEXTOID, JSONBOID, JSONBOID, TEXTOID, INTERVALOID};
	Datum		args[6] = {Int64GetDatum(account_id), CStringGetTextDatum(bundle_sid),
		r ? JsonbPGetDatum(r) : (Datum) 0, reg ? JsonbPGetDatum(reg) : (Datum) 0,
		TEXT_ARG(cloned_from),
		MS_INTERVAL_ARG(poll_after_ms)};
	char		nulls[6] = {account_id ? ' ' : 'n', ' ', r ? ' ' : 'n', reg ? ' ' : 'n', cloned_from ? ' ' : 'n', ' '};

	store_call("SELECT twilio_numbers._bundle_seen($1, $2, $3, $4, $5, $6)", 6, types, args, nulls, false, 1);
	return store_text(0, 1);
}

/* _bundle_lock: whom a registered bundle belongs to, its row locked. */
bool
store_bundle_lock(const char *bundle_sid, int64 *account_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(bundle_sid)};
	bool		isnull;
	Datum		d;

	store_call("SELECT twilio_numbers._bundle_lock($1)", 1, types, args, NULL, false, 1);
	d = store_datum(0, 1, &isnull);
	if (!isnull)
		*account_id = DatumGetInt64(d);
	return !isnull;
}

/* _bundle: the bundles row, for numbers_bundle_register's result. */
Datum
store_bundle_row(const char *bundle_sid)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(bundle_sid)};

	if (store_call("SELECT * FROM twilio_numbers._bundle($1)", 1, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not read the bundle");
	return store_row();
}

/* _bundle_pick: the customer's approved bundle for the country and type there, or NULL. */
char *
store_bundle_pick(int64 account_id, const char *twilio_account_sid, const char *iso, const char *type)
{
	Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[4] = {Int64GetDatum(account_id), CStringGetTextDatum(twilio_account_sid),
	CStringGetTextDatum(iso), CStringGetTextDatum(type)};

	store_call("SELECT twilio_numbers._bundle_pick($1, $2, $3, $4)", 4, types, args, NULL, false, 1);
	return store_text(0, 1);
}

/* For a purchase, in one call: does (iso, type) need a bundle, the one picked, what the customer has. */
bool
store_bundle_required(int64 account_id, const char *twilio_account_sid, const char *iso, const char *type,
					  char **picked, char **have)
{
	Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[4] = {Int64GetDatum(account_id), CStringGetTextDatum(twilio_account_sid),
	CStringGetTextDatum(iso), CStringGetTextDatum(type)};

	store_call("SELECT twilio_numbers._bundle_required($3, $4), twilio_numbers._bundle_pick($1, $2, $3, $4), "
			   "twilio_numbers._bundles_described($1, $3, $4)", 4, types, args, NULL, false, 1);
	*picked = store_text(0, 2);
	*have = store_text(0, 3);
	return store_bool(0, 1);
}

/* _bundle_polled: the polls since the last status change, for the backoff. */
bool
store_bundle_polled(const char *bundle_sid, int *polls)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(bundle_sid)};
	bool		isnull;
	Datum		d;

	store_call("SELECT twilio_numbers._bundle_polled($1)", 1, types, args, NULL, false, 1);
	d = store_datum(0, 1, &isnull);
	if (!isnull)
		*polls = DatumGetInt32(d);
	return !isnull;
}

/* _live_number: the number locked (its errors when it is not the account's live number). */
void
store_messaging_lock_number(int64 account_id, const char *phone, StoreMessagingNumber *n)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(account_id), CStringGetTextDatum(phone)};
	bool		isnull;

	store_call("SELECT number_id, phone_number, twilio_sid, twilio_account_sid, messaging_service_sid, "
			   "'sms' = ANY (capabilities) FROM twilio_numbers._live_number($1, $2)",
			   2, types, args, NULL, false, 1);
	n->number_id = DatumGetInt64(store_datum(0, 1, &isnull));
	n->phone = store_text(0, 2);
	n->sid = store_text(0, 3);
	n->account_sid = store_text(0, 4);
	n->service_sid = store_text(0, 5);
	n->sms = store_bool(0, 6);
}

/* _messaging_pool_size: the live numbers in a service (Twilio allows 400). */
int64
store_messaging_pool_size(const char *service_sid)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(service_sid)};
	bool		isnull;

	store_call("SELECT twilio_numbers._messaging_pool_size($1)", 1, types, args, NULL, true, 1);
	return DatumGetInt64(store_datum(0, 1, &isnull));
}

/* _messaging_set_service: the row's service once Twilio's side is done. */
void
store_messaging_set_service(int64 number_id, const char *service_sid)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(number_id), TEXT_ARG(service_sid)};
	char		nulls[2] = {' ', service_sid ? ' ' : 'n'};

	store_call("SELECT twilio_numbers._messaging_set_service($1, $2)", 2, types, args, nulls, false, 0);
}

/* _messaging_number: the owned_numbers row, for an assignment's result. */
Datum
store_messaging_number(int64 number_id)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(number_id)};

	if (store_call("SELECT * FROM twilio_numbers._messaging_number($1)", 1, types, args, NULL, false, 1) != 1)
		elog(ERROR, "could not read owned_numbers");
	return store_row();
}

/* _messaging_resync_number: the number locked for a re-sync; false when it is gone. */
bool
store_messaging_resync_number(int64 number_id, char **sid, char **status, char **service_sid)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(number_id)};

	if (store_call("SELECT * FROM twilio_numbers._messaging_resync_number($1)", 1, types, args, NULL,
				   false, 1) == 0)
		return false;
	*sid = store_text(0, 1);
	*status = store_text(0, 2);
	*service_sid = store_text(0, 3);
	return true;
}

/* A catalog look-up: a 0.3 schema has no Messaging Service pass for reconcile. */
bool
store_messaging_present(void)
{
	store_call("SELECT to_regprocedure('twilio_numbers._reconcile_emergency()') IS NOT NULL",
			   0, NULL, NULL, NULL, true, 1);
	return store_bool(0, 1);
}

/* _reconcile_emergency: emergency statuses from reconcile's listing into the rows. */
void
store_messaging_reconcile_emergency(void)
{
	store_call("SELECT twilio_numbers._reconcile_emergency()", 0, NULL, NULL, NULL, false, 1);
}

/* _messaging_in_use: without any number ever assigned, reconcile asks Twilio nothing about services. */
bool
store_messaging_in_use(void)
{
	store_call("SELECT twilio_numbers._messaging_in_use()", 0, NULL, NULL, NULL, true, 1);
	return store_bool(0, 1);
}

/* _messaging_seen_reset: reconcile's work table of Twilio's senders, empty. */
void
store_messaging_seen_reset(void)
{
	store_call("SELECT twilio_numbers._messaging_seen_reset()", 0, NULL, NULL, NULL, false, 1);
}

/* _messaging_seen_add: one listed page of a service's senders into the work table. */
void
store_messaging_seen_add(Jsonb *page, const char *service_sid)
{
	Oid			types[2] = {JSONBOID, TEXTOID};
	Datum		args[2] = {JsonbPGetDatum(page), CStringGetTextDatum(service_sid)};

	store_call("SELECT twilio_numbers._messaging_seen_add($1, $2)", 2, types, args, NULL, false, 1);
}

/* _reconcile_messaging: re-syncs queued for the differences; the drift rows recorded. */
SPITupleTable *
store_messaging_reconcile(const char *main_account_sid, uint64 *n)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(main_account_sid)};

	*n = store_call("SELECT * FROM twilio_numbers._reconcile_messaging($1)", 1, types, args, NULL, false, 0);
	return SPI_tuptable;
}

/*
 * A schema not updated yet (0.1 to 0.3, before ALTER EXTENSION ... UPDATE)
 * has the price tables but not the functions below: its price list is read
 * as those versions did, and Twilio's prices are neither read from nor
 * written to its cache.
 */
/* Has the schema the price functions (0.4 on)? */
static bool
prices_present(void)
{
	Oid			types[2] = {TEXTOID, TEXTOID};

	return OidIsValid(LookupFuncName(list_make2(makeString(TN_SCHEMA), makeString("_price_list_rows")),
									 2, types, true));
}

/* A numeric column, copied (the result is freed with the next calls). */
static Datum
store_numeric(uint64 i, int n, bool *isnull)
{
	Datum		d = store_datum(i, n, isnull);

	return *isnull ? (Datum) 0 : datumCopy(d, false, -1);
}

/* _price_list_rows (the table itself on a schema not updated yet), copied: they outlive the next call. */
int
store_price_list(const char *iso, const char *type, StorePriceListed **rows)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {CStringGetTextDatum(iso), TEXT_ARG(type)};
	char		nulls[2] = {' ', type ? ' ' : 'n'};
	int			n;

	if (prices_present())
		n = (int) store_call("SELECT * FROM twilio_numbers._price_list_rows($1, $2)",
							 2, types, args, nulls, true, 0);
	else
		n = (int) store_call("SELECT number_type, setup_price, monthly_price, currency "
							 "FROM twilio_numbers.price_list WHERE iso_country = $1 AND ($2 IS NULL OR number_type = $2)",
							 2, types, args, nulls, true, 0);
	*rows = palloc0(sizeof(StorePriceListed) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*rows)[i].number_type = store_text(i, 1);
		(*rows)[i].setup_price = store_numeric(i, 2, &isnull);
		(*rows)[i].monthly_price = store_numeric(i, 3, &isnull);
		(*rows)[i].currency = store_text(i, 4);
	}
	return n;
}

/* _pricing_cached: Twilio's cached prices, copied; none on a schema not updated yet. */
int
store_price_cached(const char *iso, int ttl_s, StorePriceCached **rows)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2] = {CStringGetTextDatum(iso), Int32GetDatum(ttl_s)};
	int			n;

	*rows = NULL;
	if (!prices_present())
		return 0;
	n = (int) store_call("SELECT * FROM twilio_numbers._pricing_cached($1, $2)",
						 2, types, args, NULL, true, 0);
	*rows = palloc0(sizeof(StorePriceCached) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		StorePriceCached *c = &(*rows)[i];
		bool		isnull;

		c->number_type = store_text(i, 1);
		c->base_price = store_numeric(i, 2, &c->base_null);
		c->current_price = store_numeric(i, 3, &c->current_null);
		c->country = store_text(i, 4);
		c->currency = store_text(i, 5);
		c->fresh = store_bool(i, 6);
		c->fetched_at = DatumGetTimestampTz(store_datum(i, 7, &isnull));
	}
	return n;
}

/* _pricing_cache_save: the prices just fetched, as arrays in step; nothing on a schema not updated yet. */
bool
store_price_cache_save(const char *iso, const char *country, const char *currency, int n,
					   const char *const *types, const Datum *base, const bool *base_null,
					   const Datum *current, const bool *current_null)
{
	Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID};
	Datum		args[6];
	char		nulls[6] = {' ', country ? ' ' : 'n', currency ? ' ' : 'n', ' ', ' ', ' '};
	Datum	   *names = palloc(sizeof(Datum) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	if (!prices_present())
		return false;
	for (int i = 0; i < n; i++)
		names[i] = CStringGetTextDatum(types[i]);
	args[0] = CStringGetTextDatum(iso);
	args[1] = TEXT_ARG(country);
	args[2] = TEXT_ARG(currency);
	if (n == 0)
	{
		args[3] = PointerGetDatum(construct_empty_array(TEXTOID));
		args[4] = args[5] = PointerGetDatum(construct_empty_array(NUMERICOID));
	}
	else
	{
		args[3] = PointerGetDatum(construct_md_array(names, NULL, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
		args[4] = PointerGetDatum(construct_md_array((Datum *) base, (bool *) base_null, 1, dims, lbs,
													 NUMERICOID, -1, false, TYPALIGN_INT));
		args[5] = PointerGetDatum(construct_md_array((Datum *) current, (bool *) current_null, 1, dims, lbs,
													 NUMERICOID, -1, false, TYPALIGN_INT));
	}
	store_call("SELECT twilio_numbers._pricing_cache_save($1, $2, $3, $4, $5, $6)", 6, argtypes, args, nulls,
			   false, 1);
	return store_bool(0, 1);
}

