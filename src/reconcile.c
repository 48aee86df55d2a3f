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

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "compat.h"
#include "reconcile.h"
#include "incarnation.h"
#include "http.h"
#include "messaging.h"
#include "recorder.h"
#include "reply.h"
#include "settings.h"
#include "twilio.h"

/*
 * List one account's numbers at Twilio into pg_temp.tn_reconcile_seen.
 * Returns NULL when the whole list was read, else what went wrong.
 */
static char *
list_account(const char *account_sid)
{
	char	   *url = twilio_account_url_for(account_sid, "/IncomingPhoneNumbers.json?PageSize=1000");
	Oid			types[1] = {JSONBOID};
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext page_cxt = AllocSetContextCreate(outer, "reconcile page", ALLOCSET_DEFAULT_SIZES);
	char	   *failed = NULL;

	/*
	 * Pages are streamed: each page's reply lives in page_cxt, written into
	 * the work table and forgotten before the next one is asked for, so the
	 * memory a pass needs does not grow with the account.
	 */
	while (url != NULL)
	{
		TwilioReply reply;
		Datum		args[1];
		char	   *next;

		MemoryContextSwitchTo(page_cxt);
		twilio_request(HTTP_GET, url, NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "list the numbers at Twilio",
					   &reply);
		if (!reply.http.complete || reply.http.status >= 300 || reply.json == NULL)
		{
			char	   *why = twilio_describe_failure(&reply);

			MemoryContextSwitchTo(outer);
			failed = pstrdup(why);
			break;
		}
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
		MemoryContextSwitchTo(outer);
		url = next && next[0] ? psprintf("%s%s", tn_api_url, next) : NULL;
		MemoryContextReset(page_cxt);
	}
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(page_cxt);
	return failed;
}

/*
 * A live row of ours whose number no listing showed is looked for by its
 * SID — unique forever — in its own account, then the other managed ones,
 * then its own again: a transfer running during the listing moves a number
 * out of an account not listed yet into one listed already, and the number
 * must not be taken for vanished.  What is found joins tn_reconcile_seen;
 * a look-up that fails joins it without a resource (unsure: not vanished).
 */
static void
look_for_unseen(Datum seen, Datum *accounts, int naccounts)
{
	Oid			types[2] = {INT8ARRAYOID, TEXTOID};
	Datum		args[2] = {seen, CStringGetTextDatum(tn_account_sid)};
	SPITupleTable *tt;
	uint64		n;

	/*
	 * Not read-only: a read-only query would run on the snapshot taken
	 * before this call's own INSERTs into tn_reconcile_seen, see none of the
	 * listed numbers and look every live row up again (one request per
	 * number instead of one per page).
	 */
	if (SPI_execute_with_args("SELECT o.twilio_sid, coalesce(o.twilio_account_sid, $2) "
							  "FROM twilio_numbers.owned_numbers o "
							  "WHERE o.number_id = ANY ($1) AND o.status IN ('active', 'past_due') "
							  "  AND NOT EXISTS (SELECT 1 FROM pg_temp.tn_reconcile_seen t WHERE t.sid = o.twilio_sid)",
							  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read owned_numbers");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		char	   *sid = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		char	   *home = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		TwilioReply reply = {0};
		bool		unsure = false;

		for (int k = -1; k <= naccounts; k++)
		{
			/* home first (k = -1), the others, home again (k = naccounts) */
			char	   *acct = (k < 0 || k == naccounts) ? home : TextDatumGetCString(accounts[k]);

			if (k >= 0 && k < naccounts && strcmp(acct, home) == 0)
				continue;
			twilio_request(HTTP_GET, twilio_account_url_for(acct, "/IncomingPhoneNumbers/%s.json", sid), NULL,
						   TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "look the number up", &reply);
			if (reply.http.complete && reply.http.status < 300 && reply.json)
				break;
			if (!reply.http.complete || reply.http.status != 404)
				unsure = true;
		}
		if ((reply.http.complete && reply.http.status < 300 && reply.json) || unsure)
		{
			Datum		a[2];
			char		nulls[2] = {' ', ' '};

			a[0] = CStringGetTextDatum(sid);
			a[1] = reply.json && reply.http.status < 300 ? JsonbPGetDatum(reply.json) : (Datum) 0;
			nulls[1] = a[1] ? ' ' : 'n';
			if (SPI_execute_with_args("INSERT INTO pg_temp.tn_reconcile_seen (sid, phone, account_sid, created, r) "
									  "VALUES ($1, $2->>'phone_number', $2->>'account_sid', "
									  "        twilio_numbers._twilio_time($2->>'date_created'), $2) "
									  "ON CONFLICT (sid) DO NOTHING",
									  2, (Oid[]) {TEXTOID, JSONBOID}, a, nulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not record Twilio's number");
		}
	}
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
	/* in every managed account: one whose listing failed may hold it */
	look_for_unseen(seen, elems, naccounts);
	/* statistics for the comparison's plans: without them a big account's joins go quadratic */
	if (SPI_execute("ANALYZE pg_temp.tn_reconcile_seen", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not analyze the reconcile work table");

	/* 4. compare and act */
	args[0] = seen;
	args[1] = PointerGetDatum(construct_array(listed, nlisted, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(failures.data));
	args[3] = attempts;
	args[4] = CStringGetTextDatum(tn_account_sid);
	args[5] = CStringGetTextDatum(recorder_epoch());
	/*
	 * A row left releasing whose release job died (an older dead letter,
	 * an outage before outages stopped counting): queued again.
	 */
	if (SPI_execute_with_args("INSERT INTO twilio_numbers.work_queue (kind, number_id, phone_number, twilio_sid, "
					"twilio_account_sid, payload) "
					"SELECT 'release', o.number_id, o.phone_number, o.twilio_sid, o.twilio_account_sid, "
					"       '{\"reason\": \"reconcile: its release job was dead\"}' "
					"FROM twilio_numbers.owned_numbers o "
					"WHERE o.status = 'releasing' AND o.number_id = ANY ($1) "
					"  AND NOT EXISTS (SELECT 1 FROM twilio_numbers.work_queue q "
					"                  WHERE q.number_id = o.number_id AND q.kind = 'release' AND q.status <> 'dead')",
					1, (Oid[]) {INT8ARRAYOID}, &seen, NULL, false, 0) < 0)
		elog(ERROR, "could not queue releases again");
	if (SPI_execute_with_args("SELECT * FROM twilio_numbers._reconcile($1, $2, $3, $4, $5, $6)",
							  6, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not reconcile");
	return SPI_tuptable;
}

/*
 * Return n findings of tt; a held copy's say what a live database would
 * have done (what it wrote rolls back).
 */
static void
put_findings(ReturnSetInfo *rsinfo, SPITupleTable *tt, uint64 n, bool held)
{
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tuple = tt->vals[i];

		if (held)
		{
			int			col = SPI_fnumber(tt->tupdesc, "action");
			char	   *action = SPI_getvalue(tuple, tt->tupdesc, col);
			Datum		value = CStringGetTextDatum(psprintf("none: a held copy only reports (live, it would be: %s)",
															 action ? action : ""));
			bool		isnull = false;

			tuple = heap_modify_tuple_by_cols(tuple, tt->tupdesc, 1, &col, &value, &isnull);
		}
		tuplestore_puttuple(rsinfo->setResult, tuple);
	}
}

PG_FUNCTION_INFO_V1(tn_numbers_reconcile);

/* numbers_reconcile() -> SETOF drift */
Datum
tn_numbers_reconcile(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPITupleTable *tt;
	uint64		n;
	MemoryContext oldcontext;
	ResourceOwner oldowner;
	bool		held;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	held = incarnation_status() != INCARNATION_LIVE;
	oldcontext = CurrentMemoryContext;
	oldowner = CurrentResourceOwner;
	if (held)
	{
		/* a held copy only reports: the pass runs, then all it wrote rolls back */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcontext);
	}
	tt = reconcile();
	put_findings(rsinfo, tt, SPI_processed, held);
	/* then the Messaging Services (messaging.c) */
	tt = messaging_reconcile(&n);
	put_findings(rsinfo, tt, n, held);
	if (held)
	{
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/* The worker's pass (inside its SPI connection); returns the findings. */
uint64
reconcile_in_worker(char **unreachable)
{
	SPITupleTable *tt;
	uint64		n;
	uint64		m;
	int			finding;
	int			detail;
	StringInfoData accounts;

	tt = reconcile();
	n = SPI_processed;
	/* the accounts it could not list, with why ("AC… (HTTP 401 …), …"), NULL when none */
	finding = SPI_fnumber(tt->tupdesc, "finding");
	detail = SPI_fnumber(tt->tupdesc, "detail");
	initStringInfo(&accounts);
	for (uint64 i = 0; i < n; i++)
	{
		char	   *f = SPI_getvalue(tt->vals[i], tt->tupdesc, finding);

		if (f && strcmp(f, "account_unreachable") == 0)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(tt->vals[i], tt->tupdesc, detail, &isnull);
			char	   *sid = isnull ? NULL : jb_text(&DatumGetJsonbP(d)->root, "account_sid");
			char	   *error = isnull ? NULL : jb_text(&DatumGetJsonbP(d)->root, "error");

			appendStringInfo(&accounts, "%s%s (%s)", accounts.len ? ", " : "", sid ? sid : "?",
							 error ? error : "?");
		}
	}
	*unreachable = accounts.len ? accounts.data : NULL;
	(void) messaging_reconcile(&m);
	return n + m;
}
