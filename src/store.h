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
#include "executor/spi.h"
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
extern SPITupleTable *store_hosted_order_record(int64 account_id, const char *resource_json, const char *ours_json);
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


/* ---- addresses, bundles, Messaging Services, prices ---- */


#endif							/* TWILIO_NUMBERS_STORE_H */
