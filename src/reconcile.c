/*
 * reconcile.c — numbers_reconcile(): compare owned_numbers with the numbers
 * Twilio really holds, and act on every difference.
 *
 * Order matters: the live rows are read first, then every account's numbers
 * are listed at Twilio (all pages), then SQL (_reconcile) compares.  A row
 * that committed after the read is not "seen", so it cannot be declared
 * vanished; a number bought after the listing is not listed, so it cannot be
 * declared an orphan; and an orphan is only released through a compensate
 * job, which checks again that no live row owns it before the DELETE.
 * Numbers a purchase in flight is buying are left alone.
 *
 * The worker runs a pass at start-up — the crash case: shared memory (and
 * with it the intents of rolled-back purchases) is lost in a crash restart.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "twilio_numbers.h"

/* List one account's numbers at Twilio into pg_temp.tn_reconcile_seen. */
static void
list_account(const char *account_sid)
{
	char	   *url = twilio_account_url_for(account_sid, "/IncomingPhoneNumbers.json?PageSize=1000");
	Oid			types[1] = {JSONBOID};

	while (url != NULL)
	{
		TwilioReply reply;
		Datum		args[1];
		char	   *next;

		twilio_request(HTTP_GET, url, NULL, 0, "list the numbers at Twilio", &reply);
		if (reply.json == NULL)
			break;
		args[0] = JsonbPGetDatum(reply.json);
		if (SPI_execute_with_args("INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, r) "
								  "SELECT e->>'sid', e->>'phone_number', e->>'account_sid', e "
								  "FROM jsonb_array_elements($1->'incoming_phone_numbers') e "
								  "ON CONFLICT (sid) DO NOTHING",
								  1, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record Twilio's numbers");

		/* 2010 paging: next_page_uri is relative to the API's base URL */
		next = jb_text(&reply.json->root, "next_page_uri");
		url = next && next[0] ? psprintf("%s%s", tn_api_url, next) : NULL;
	}
}

/* One reconcile pass; returns the drift rows it recorded (SPI tuple table). */
static SPITupleTable *
reconcile(void)
{
	Datum		seen;
	Datum		listed;
	bool		isnull;
	ArrayType  *accounts;
	Datum	   *elems;
	bool	   *nulls;
	int			naccounts;
	Oid			types[3] = {INT8ARRAYOID, TEXTARRAYOID, TEXTOID};
	Datum		args[3];

	twilio_require_credentials();

	/* 1. the live rows, before the listing */
	if (SPI_execute("SELECT coalesce(array_agg(number_id), '{}') FROM twilio_numbers.owned_numbers "
					"WHERE status <> 'released'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read owned_numbers");
	seen = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	seen = PointerGetDatum(PG_DETOAST_DATUM_COPY(seen));

	/* 2. every Twilio account we use: the main one and the subaccounts */
	args[0] = CStringGetTextDatum(tn_account_sid);
	if (SPI_execute_with_args("SELECT array_agg(DISTINCT s ORDER BY s) FROM ("
							  "  SELECT $1::text AS s"
							  "  UNION SELECT twilio_account_sid FROM twilio_numbers.accounts"
							  "        WHERE twilio_account_sid IS NOT NULL"
							  "  UNION SELECT twilio_account_sid FROM twilio_numbers.owned_numbers"
							  "        WHERE status <> 'released' AND twilio_account_sid IS NOT NULL) a",
							  1, (Oid[]) {TEXTOID}, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read accounts");
	listed = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	accounts = DatumGetArrayTypePCopy(listed);
	deconstruct_array(accounts, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &naccounts);

	if (SPI_execute("CREATE TEMP TABLE IF NOT EXISTS tn_reconcile_seen "
					"(sid text PRIMARY KEY, phone text, account_sid text, r jsonb) ON COMMIT DROP",
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute("TRUNCATE pg_temp.tn_reconcile_seen", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the reconcile work table");
	for (int i = 0; i < naccounts; i++)
		list_account(TextDatumGetCString(elems[i]));

	/* 3. compare and act */
	args[0] = seen;
	args[1] = PointerGetDatum(accounts);
	args[2] = CStringGetTextDatum(tn_account_sid);
	if (SPI_execute_with_args("SELECT * FROM twilio_numbers._reconcile($1, $2, $3)",
							  3, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not reconcile");
	return SPI_tuptable;
}

PG_FUNCTION_INFO_V1(tn_numbers_reconcile);

/* numbers_reconcile() -> SETOF drift */
Datum
tn_numbers_reconcile(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPITupleTable *tt;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	tt = reconcile();
	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, tt->vals[i]);
	SPI_finish();
	PG_RETURN_VOID();
}

/* The worker's pass (inside its SPI connection); returns the findings. */
uint64
tn_reconcile_in_worker(void)
{
	(void) reconcile();
	return SPI_processed;
}

PG_FUNCTION_INFO_V1(tn_purchase_in_flight_sql);

Datum
tn_purchase_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(tn_intent_buying(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}
