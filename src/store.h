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
#include "utils/timestamp.h"

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
/* (sql/schema/accounts.sql, owned_numbers.sql, purchases.sql, hosted.sql, adoption.sql, attempts.sql) */

/* A live number of an account, locked (_live_number raises what is wrong). */
typedef struct LiveNumber
{
	int64		number_id;
	char	   *phone;
	char	   *sid;
	char	   *account_sid;
	char	   *trunk_sid;
	char	   *currency;
} LiveNumber;

/* What a number moving to another Twilio account takes along or must leave. */
typedef struct TransferNeeds
{
	char	   *messaging_service_sid;
	char	   *address_sid;			/* NULL where Twilio requires none */
	char	   *bundle_sid;
	char	   *iso_country;
	char	   *number_type;
} TransferNeeds;

extern bool store_account(int64 account_id, char **currency, char **status, char **twilio_account_sid);
extern void store_account_funds(int64 account_id, Datum *balance, Datum *credit_limit);
extern SPITupleTable *store_account_map(int64 account_id, const char *twilio_account_sid);
extern void store_check_money(const char *name, Datum amount, bool positive);
extern bool store_number_taken(char **phones, int n, bool orders_too, char **phone, char **taken);
extern SPITupleTable *store_purchase_record(int64 account_id, const char *numbers_json);
extern bool store_created_by_attempt(const char *resource_json, const char *phone, const char *twilio_account_sid,
									 TimestampTz started, TimestampTz deadline, Datum fields, const char *md5);
extern SPITupleTable *store_adopt_record(int64 account_id, const char *resource_json, const char *number_type,
										 const char *iso_country, Datum monthly_price, const char *currency,
										 bool period_paid);
extern char *store_hosted_price_currency(const char *phone);
extern SPITupleTable *store_hosted_order_record(int64 account_id, const char *resource_json, const char *ours_json,
												int poll_after_ms);
extern bool store_hosted_order_lock(const char *order_sid, int64 *account_id, char **status);
extern char *store_hosted_order_seen(const char *order_sid, Datum order, Datum number);
extern SPITupleTable *store_hosted_order(const char *order_sid);
extern int	store_hosted_order_polled(const char *order_sid);
extern void store_live_number(int64 account_id, const char *phone, LiveNumber *ln);
extern void store_apply_twilio(int64 number_id, const char *resource_json);
extern SPITupleTable *store_owned_number(int64 number_id);
extern void store_set_trunk(int64 number_id, const char *trunk_sid);
extern void store_transfer_needs(int64 number_id, TransferNeeds *needs);
extern void store_transfer_record(int64 number_id, int64 to_account_id);



/* ---- reconcile (sql/schema/reconcile.sql) ---- */

/*
 * A pass's start: the live rows' ids (int8[]), the open attempts' (int8[])
 * and the managed Twilio accounts (text[]), copied into the caller's memory;
 * an empty work table for the listing.
 */
extern void store_reconcile_begin(const char *main_account, Datum *live, Datum *attempts, Datum *accounts);
/* One page of a listing into the work table; returns how many numbers it held. */
extern int	store_reconcile_listed(Jsonb *page);
/*
 * The live rows no listing showed: *sids and *homes (their Twilio accounts),
 * palloc'd in the caller's memory; returns how many.
 */
extern int	store_reconcile_unseen(Datum live, const char *main_account, char ***sids, char ***homes);
/* What the look-up of an unseen row found (NULL: the look-up failed). */
extern void store_reconcile_found(const char *sid, Jsonb *resource);
/*
 * Compare and act (_reconcile), through a cursor: its first fetch runs the
 * comparison; the drift rows it recorded come in batches.
 */
extern Portal store_reconcile_compare(Datum live, Datum listed, Jsonb *failed, Datum attempts,
									  const char *main_account, const char *epoch);
/* The next drift rows, at most n (an SPI tuple table the caller frees; *got 0 at the end). */
extern SPITupleTable *store_reconcile_fetch(Portal cursor, long n, uint64 *got);
extern void store_reconcile_close(Portal cursor);


/* ---- addresses, bundles, Messaging Services, prices ---- */

/* addresses (sql/schema/addresses.sql) */
/* Record what Twilio answered for an address (_address_seen): the addresses row. */
extern Datum store_address_seen(int64 account_id, Jsonb *r, const char *copied_from);
/* Lock an address of the account: the Twilio account it lives in, NULL when it has none such. */
extern char *store_address_lock(int64 account_id, const char *address_sid);
/* The account's addresses locked, oldest first (*sids, *homes: their Twilio accounts); how many. */
extern int	store_addresses_lock(int64 account_id, char ***sids, char ***homes);
/* The live numbers that name an address, "a, b" (*n of them). */
extern char *store_address_dependents(const char *address_sid, int *n);
/* Forget an address: the row it was; *found false when there was none. */
extern Datum store_address_forget(const char *address_sid, bool *found);
/* An address of the account in that Twilio account with the same content, or NULL. */
extern char *store_address_copy_of(const char *address_sid, int64 account_id, const char *twilio_account_sid);

/* bundles and Regulations (sql/schema/bundles.sql) */
/* The cached Regulations younger than ttl_s (regulations_cache row); *found false when none. */
extern Datum store_bundle_regulations_cached(const char *iso, const char *type, const char *end_user_type,
											 int ttl_s, bool *found);
/* Cache Regulations just fetched (address_requirements may be NULL): the row. */
extern Datum store_bundle_regulations_save(const char *iso, const char *type, const char *end_user_type,
										   Jsonb *regulations, const char *address_requirements);
/* _bundle_seen (account_id 0: unknown; r NULL: gone): the status now, or NULL. */
extern char *store_bundle_seen(int64 account_id, const char *bundle_sid, Jsonb *r, Jsonb *reg,
							   const char *cloned_from, int poll_after_ms);
/* Lock a registered bundle: true and *account_id when there is one. */
extern bool store_bundle_lock(const char *bundle_sid, int64 *account_id);
/* The bundles row. */
extern Datum store_bundle_row(const char *bundle_sid);
/* The customer's approved bundle for (iso, type) in a Twilio account, or NULL. */
extern char *store_bundle_pick(int64 account_id, const char *twilio_account_sid, const char *iso,
							   const char *type);
/* For a purchase: whether (iso, type) needs a bundle; *picked as above, *have what the customer has. */
extern bool store_bundle_required(int64 account_id, const char *twilio_account_sid, const char *iso,
								  const char *type, char **picked, char **have);
/* One more poll of a bundle: true and *polls (since its last change) when it is there. */
extern bool store_bundle_polled(const char *bundle_sid, int *polls);

/* Messaging Services (sql/schema/messaging.sql) */
/* A live number of an account as assignment needs it (_live_number locks it and raises its errors). */
typedef struct StoreMessagingNumber
{
	int64		number_id;
	char	   *phone;
	char	   *sid;
	char	   *account_sid;
	char	   *service_sid;
	bool		sms;
} StoreMessagingNumber;
extern void store_messaging_lock_number(int64 account_id, const char *phone, StoreMessagingNumber *n);
/* The live numbers in a Messaging Service. */
extern int64 store_messaging_pool_size(const char *service_sid);
/* Write the number's service (NULL: none). */
extern void store_messaging_set_service(int64 number_id, const char *service_sid);
/* The owned_numbers row. */
extern Datum store_messaging_number(int64 number_id);
/* Lock a number for a re-sync: false when it is gone; else its SID, status and service. */
extern bool store_messaging_resync_number(int64 number_id, char **sid, char **status, char **service_sid);
/* Has this schema the Messaging Service and emergency pass (0.4)? */
extern bool store_messaging_present(void);
/* Emergency statuses from reconcile's listing into the rows. */
extern void store_messaging_reconcile_emergency(void);
/* Was any number ever in a Messaging Service? */
extern bool store_messaging_in_use(void);
/* Reconcile's work table of Twilio's senders, empty; one listed page into it. */
extern void store_messaging_seen_reset(void);
extern void store_messaging_seen_add(Jsonb *page, const char *service_sid);
/* Compare and queue re-syncs (_reconcile_messaging): the drift rows (*n of them). */
extern SPITupleTable *store_messaging_reconcile(const char *main_account_sid, uint64 *n);

/* prices (sql/schema/catalog.sql) */
/* A price_list row: the reseller's price of a number type. */
typedef struct StorePriceListed
{
	char	   *number_type;
	Datum		setup_price;
	Datum		monthly_price;
	char	   *currency;
} StorePriceListed;
/* The price list's rows of a country (of one type unless type is NULL), copied; how many. */
extern int	store_price_list(const char *iso, const char *type, StorePriceListed **rows);
/* A pricing_cache row: Twilio's price of a number type, and whether younger than the TTL. */
typedef struct StorePriceCached
{
	char	   *number_type;
	Datum		base_price;
	bool		base_null;
	Datum		current_price;
	bool		current_null;
	char	   *country;
	char	   *currency;
	bool		fresh;
	TimestampTz fetched_at;
} StorePriceCached;
/* Twilio's cached prices of a country by number type, copied; how many. */
extern int	store_price_cached(const char *iso, int ttl_s, StorePriceCached **rows);
/* Replace a country's cached prices (n types, in step); false when another session is caching it. */
extern bool store_price_cache_save(const char *iso, const char *country, const char *currency, int n,
								   const char *const *types, const Datum *base, const bool *base_null,
								   const Datum *current, const bool *current_null);


#endif							/* TWILIO_NUMBERS_STORE_H */
