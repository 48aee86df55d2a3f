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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "store.h"
#include "queue.h"

uint64
store_call(const char *call, int nargs, const Oid *types, const Datum *args,
		   const char *nulls, bool read_only, long limit)
{
	int			rc;

	rc = SPI_execute_with_args(call, nargs, (Oid *) types, (Datum *) args, nulls, read_only, limit);
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


/* ---- reconcile (sql/schema/reconcile.sql) ---- */


/* ---- addresses, bundles, Messaging Services, prices ---- */

