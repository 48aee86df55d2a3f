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
#include "utils/snapmgr.h"

#include "store.h"

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


/* ---- purchases, attempts, hosted orders, numbers changed in a transaction ---- */

#define JSONB_ARG(text) DirectFunctionCall1(jsonb_in, CStringGetDatum(text))
#define TEXT_ARG(cstr) ((cstr) ? CStringGetTextDatum(cstr) : (Datum) 0)

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

/* The row of an order Twilio has just created (_hosted_order_record); the row. */
SPITupleTable *
store_hosted_order_record(int64 account_id, const char *resource_json, const char *ours_json)
{
	Oid			types[3] = {INT8OID, JSONBOID, JSONBOID};
	Datum		args[3] = {Int64GetDatum(account_id), JSONB_ARG(resource_json), JSONB_ARG(ours_json)};

	if (store_call("SELECT * FROM twilio_numbers._hosted_order_record($1, $2, $3)",
				   3, types, args, NULL, false, 1) != 1)
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


/* ---- addresses, bundles, Messaging Services, prices ---- */

