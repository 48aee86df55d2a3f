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


/* ---- addresses, bundles, Messaging Services, prices ---- */

