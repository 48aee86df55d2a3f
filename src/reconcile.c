/*
 * reconcile.c — numbers_reconcile(): compare owned_numbers with the numbers
 * Twilio really holds in the accounts this database manages, and act on
 * every difference — within what this database can prove is its own.
 *
 * The Twilio account is shared (README "Sharing a Twilio account"): a
 * number at Twilio without a live row is released only when it is provably
 * ours — a row of ours released it already, or a recorded purchase attempt
 * of this epoch (recorder.c) created it and its transaction is over.
 * Everything else is reported (unmanaged_at_twilio; adoptable with
 * numbers_adopt) and never touched; an attempt of an earlier epoch (a
 * promoted standby, a restored copy) is reported as unproven.
 *
 * Order matters: the live rows and the open attempts are read first, then
 * every managed account's numbers are listed at Twilio (all pages), then SQL
 * (_reconcile) compares.  A row that committed after the read is not "seen",
 * so it cannot be declared vanished; a number bought after the listing is
 * not listed, so it cannot be taken for an orphan; an attempt opened after
 * the read is not judged.  An account whose listing fails is reported and
 * left out of every conclusion that needs its whole list; the others are
 * still reconciled.
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
#include "utils/json.h"

#include "twilio_numbers.h"

/*
 * List one account's numbers at Twilio into pg_temp.tn_reconcile_seen.
 * Returns NULL when the whole list was read, else what went wrong.
 */
static char *
list_account(const char *account_sid)
{
	char	   *url = twilio_account_url_for(account_sid, "/IncomingPhoneNumbers.json?PageSize=1000");
	Oid			types[1] = {JSONBOID};

	while (url != NULL)
	{
		TwilioReply reply;
		Datum		args[1];
		char	   *next;

		twilio_request(HTTP_GET, url, NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "list the numbers at Twilio",
					   &reply);
		if (!reply.http.complete || reply.http.status >= 300 || reply.json == NULL)
			return tn_describe_failure(&reply);
		args[0] = JsonbPGetDatum(reply.json);
		if (SPI_execute_with_args("INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, created, r) "
								  "SELECT e->>'sid', e->>'phone_number', e->>'account_sid', "
								  "       twilio_numbers._twilio_time(e->>'date_created'), e "
								  "FROM jsonb_array_elements($1->'incoming_phone_numbers') e "
								  "ON CONFLICT (sid) DO NOTHING",
								  1, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record Twilio's numbers");

		/* 2010 paging: next_page_uri is relative to the API's base URL */
		next = jb_text(&reply.json->root, "next_page_uri");
		url = next && next[0] ? psprintf("%s%s", tn_api_url, next) : NULL;
	}
	return NULL;
}

/* The first column of the one-row SPI result, copied out of SPI's memory. */
static Datum
first_array(void)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	return PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
}

/* One reconcile pass; returns the drift rows it recorded (SPI tuple table). */
static SPITupleTable *
reconcile(void)
{
	Datum		seen;
	Datum		attempts;
	ArrayType  *accounts;
	Datum	   *elems;
	bool	   *nulls;
	int			naccounts;
	Datum	   *listed;
	int			nlisted = 0;
	StringInfoData failures;
	Oid			types[6] = {INT8ARRAYOID, TEXTARRAYOID, JSONBOID, INT8ARRAYOID, TEXTOID, TEXTOID};
	Datum		args[6];

	twilio_require_credentials();

	/* 1. the live rows and the open attempts, before the listing */
	if (SPI_execute("SELECT coalesce(array_agg(number_id), '{}') FROM twilio_numbers.owned_numbers "
					"WHERE status <> 'released'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read owned_numbers");
	seen = first_array();
	if (SPI_execute("SELECT coalesce(array_agg(attempt_id), '{}') FROM twilio_numbers.purchase_attempts "
					"WHERE state = 'open'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read purchase_attempts");
	attempts = first_array();

	/* 2. the Twilio accounts this database manages (a DBA maps them) */
	args[0] = CStringGetTextDatum(tn_account_sid);
	if (SPI_execute_with_args("SELECT twilio_numbers._managed_accounts($1)",
							  1, (Oid[]) {TEXTOID}, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read accounts");
	accounts = DatumGetArrayTypeP(first_array());
	deconstruct_array(accounts, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &naccounts);

	if (SPI_execute("CREATE TEMP TABLE IF NOT EXISTS tn_reconcile_seen "
					"(sid text PRIMARY KEY, phone text, account_sid text, created timestamptz, r jsonb) "
					"ON COMMIT DROP", false, 0) != SPI_OK_UTILITY ||
		SPI_execute("TRUNCATE pg_temp.tn_reconcile_seen", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the reconcile work table");

	/* 3. list each; one that fails is reported, the others go on */
	listed = palloc(sizeof(Datum) * Max(naccounts, 1));
	initStringInfo(&failures);
	appendStringInfoChar(&failures, '{');
	for (int i = 0; i < naccounts; i++)
	{
		char	   *sid = TextDatumGetCString(elems[i]);
		char	   *failed = list_account(sid);

		if (failed == NULL)
			listed[nlisted++] = elems[i];
		else
		{
			if (failures.len > 1)
				appendStringInfoChar(&failures, ',');
			escape_json(&failures, sid);
			appendStringInfoChar(&failures, ':');
			escape_json(&failures, failed);
		}
	}
	appendStringInfoChar(&failures, '}');

	/* 4. compare and act */
	args[0] = seen;
	args[1] = PointerGetDatum(construct_array(listed, nlisted, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(failures.data));
	args[3] = attempts;
	args[4] = CStringGetTextDatum(tn_account_sid);
	args[5] = CStringGetTextDatum(attempt_epoch());
	if (SPI_execute_with_args("SELECT * FROM twilio_numbers._reconcile($1, $2, $3, $4, $5, $6)",
							  6, types, args, NULL, false, 0) != SPI_OK_SELECT)
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
