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
#include "utils/builtins.h"

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


/* ---- reconcile (sql/schema/reconcile.sql) ---- */
#include "utils/array.h"

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

/* _reconcile: compare and act; the drift rows are the caller's. */
SPITupleTable *
store_reconcile_compare(Datum live, Datum listed, Jsonb *failed, Datum attempts,
						const char *main_account, const char *epoch, uint64 *n)
{
	Datum		args[6] = {live, listed, JsonbPGetDatum(failed), attempts, CStringGetTextDatum(main_account),
	CStringGetTextDatum(epoch)};

	*n = store_call("SELECT * FROM twilio_numbers._reconcile($1, $2, $3, $4, $5, $6)", 6,
					(Oid[]) {INT8ARRAYOID, TEXTARRAYOID, JSONBOID, INT8ARRAYOID, TEXTOID, TEXTOID}, args, NULL,
					false, 0);
	return SPI_tuptable;
}


/* ---- addresses, bundles, Messaging Services, prices ---- */

