/*
 * store.h — the C–SQL boundary (store.c): every statement the C code runs
 * against the extension's tables, each a call of a function defined in
 * sql/schema/ beside the tables it guards, with typed arguments.
 *
 * Callers are SPI connected.  No other C file names a table.
 */
#ifndef TWILIO_NUMBERS_STORE_H
#define TWILIO_NUMBERS_STORE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/*
 * Run one call, "SELECT ... FROM twilio_numbers.f($1, ...)", with its
 * arguments; a NULL in nulls means none is null.  Returns the rows
 * (SPI_processed, SPI_tuptable).  Errors name the function called.
 */
extern uint64 store_call(const char *call, int nargs, const Oid *types, const Datum *args,
						 const char *nulls, bool read_only, long limit);

/* Column n (1-based) of row i of the last call: a text copy (NULL when null). */
extern char *store_text(uint64 i, int n);
/* Column n of row i as a Datum; *isnull says whether it was null. */
extern Datum store_datum(uint64 i, int n, bool *isnull);

/* ---- the work queue and its jobs (sql/schema/queue.sql) ---- */

struct Job;

/* the queue (queue.sql); the queue_* names are the ones the rest of the code always called */
extern void queue_enqueue(const char *kind, int64 number_id, const char *phone, const char *sid,
						  const char *account_sid, const char *payload, int64 attempt_id);
extern bool queue_live_row_owns(const char *sid);
extern bool queue_hosted_order_committed(const char *sid);
extern void queue_close_attempt(int64 attempt_id, const char *outcome, const char *sid);
extern bool store_queue_next_due_ms(bool writes_paused, int64 *ms);
extern bool store_queue_claim(bool writes_paused, int tries, struct Job *job);
extern void store_queue_done(int64 job_id, const char *note);
extern bool store_queue_failed(int64 job_id, const char *error, bool outage, double base_ms, double max_ms,
							   int max_attempts);
extern void store_queue_again(int64 job_id, long again_ms);
extern void store_queue_watching(int64 job_id, TimestampTz until);
extern List *store_queue_managed_accounts(const char *main_account);

/* the numbers the jobs settle */
typedef struct StoreResyncRow
{
	char	   *sid;
	char	   *account_sid;
	char	   *status;
	char	   *address_sid;
	char	   *bundle_sid;
} StoreResyncRow;

extern void store_queue_number_released(int64 number_id);
extern bool store_queue_number_exists(int64 number_id);
extern bool store_queue_number_for_resync(int64 number_id, StoreResyncRow *row);
extern Jsonb *store_queue_config_to_push(int64 number_id, Jsonb *twilio);
extern void store_queue_number_twilio(int64 number_id, Jsonb *twilio);

/* the attempts the jobs and the recorder settle (attempts.sql) */
typedef struct StoreAttemptFacts
{
	char	   *account_sid;
	TimestampTz started;
	TimestampTz deadline;
	Datum		fields;			/* text[] of the request's fields, 0 when none */
	char	   *md5;
	int			unresolved;		/* the job's payload: POSTs without a reply */
	int			made;			/* cardinality(created_sids) */
	bool		sid_done;		/* the job's SID is among created_sids */
	bool		committed;		/* the job's payload: the creation committed */
} StoreAttemptFacts;

extern bool store_attempt_undo_facts(int64 attempt_id, const char *payload, const char *sid, StoreAttemptFacts *f);
extern void store_attempt_made(int64 attempt_id, const char *sid);
extern int64 store_attempt_open(const char *kind, const char *phone, const char *account_sid,
								const char *recorded_in, int pid, TimestampTz deadline, Datum fields,
								const char *md5);
extern void store_attempt_settle(int64 attempt_id, const char *outcome, const char *sid);

/* the worker's billing runs (billing.sql) */
extern int64 store_billing_run_start(TimestampTz as_of, int batch_size, int *nbatches, int64 **lo, int64 **hi);
extern void store_billing_run_batch(int64 run_id, int64 lo, int64 hi, TimestampTz as_of, Interval *grace);
extern void store_billing_run_finish(int64 run_id);
extern void store_billing_run_failed(int64 run_id, const char *error);
extern void store_billing_runs_interrupted(void);

/* what a wake looks at: the extension's version (pg_extension), the incarnation (incarnation.sql) */
extern char *store_extension_version(void);
extern char *store_incarnation_status(bool follow_promotion);
extern char *store_incarnation_described(void);

/* the DROP EXTENSION guard (any version of the schema) */
extern void store_drop_guard_counts(int64 *live, int64 *entries, int64 *pending, char **balance);
extern void store_drop_schema(void);


/* ---- purchases, attempts, hosted orders, numbers changed in a transaction ---- */


/* ---- reconcile (sql/schema/reconcile.sql) ---- */


/* ---- addresses, bundles, Messaging Services, prices ---- */


#endif							/* TWILIO_NUMBERS_STORE_H */
