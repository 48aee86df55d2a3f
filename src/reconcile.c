/*
 * reconcile.c — numbers_reconcile(): compare owned_numbers with the numbers
 * Twilio really holds in the accounts this database manages, and act on
 * every difference — within what this database can prove is its own.
 *
 * The Twilio account is shared (docs/design.md "Sharing a Twilio account"): a
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
 *
 * The SQL lives in sql/schema/reconcile.sql (_reconcile_begin, _listed,
 * _unseen, _found, _reconcile), called through store.c.  Memory does not
 * grow with the account: pages are streamed into a work table, each page's
 * and each batch of look-ups' memory freed before the next.  A row an application
 * holds locked is skipped for the next pass, never waited for (_reconcile).
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
#include "store.h"
#include "twilio.h"

/*
 * List one account's numbers at Twilio into the work table
 * (store_reconcile_listed).  Returns NULL when the whole list was read,
 * else what went wrong.
 */
static char *
list_account(const char *account_sid)
{
	char	   *url = twilio_account_url_for(account_sid, "/IncomingPhoneNumbers.json?PageSize=1000");
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
		(void) store_reconcile_listed(reply.json);

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

/* The drift rows fetched at a time from the comparison's cursor. */
#define FINDINGS_BATCH 1000

/* A live row no listing showed, and how far its look-ups went. */
typedef struct Unseen
{
	char	   *sid;
	char	   *home;			/* the Twilio account its row names */
	int			k;				/* next account: -1 home, 0.. the others, naccounts home again */
	bool		unsure;			/* a look-up failed (not a 404): maybe still there */
	bool		done;
} Unseen;

/* The account u's next look-up asks (its home skipped among the others), NULL when none is left. */
static const char *
unseen_account(Unseen *u, char **names, int naccounts)
{
	while (u->k >= 0 && u->k < naccounts && strcmp(names[u->k], u->home) == 0)
		u->k++;
	if (u->k > naccounts)
		return NULL;
	return (u->k < 0 || u->k == naccounts) ? u->home : names[u->k];
}

/*
 * A live row of ours whose number no listing showed is looked for by its
 * SID — unique forever — in its own account, then the other managed ones,
 * then its own again: a transfer running during the listing moves a number
 * out of an account not listed yet into one listed already, and the number
 * must not be taken for vanished.  What is found joins the work table; a
 * look-up that fails joins it without a resource (unsure: not vanished).
 *
 * The rows are looked up max_concurrent_requests at a time, each row's
 * look-ups in its order (the budget's slots shared with the cluster: a
 * whole account whose listing failed may be thousands of look-ups); one
 * that got no answer, or a 429 or 5xx, is asked again with a single
 * look-up's retries.  Each batch's memory is freed before the next.
 */
static void
look_for_unseen(Datum live, Datum *accounts, int naccounts)
{
	char	  **sids;
	char	  **homes;
	int			n = store_reconcile_unseen(live, tn_account_sid, &sids, &homes);
	int			batch = Max(tn_max_concurrent_requests, 1);
	char	  **names = palloc(sizeof(char *) * Max(naccounts, 1));
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext batch_cxt = AllocSetContextCreate(outer, "reconcile look-ups", ALLOCSET_DEFAULT_SIZES);

	for (int a = 0; a < naccounts; a++)
		names[a] = TextDatumGetCString(accounts[a]);
	for (int start = 0; start < n; start += batch)
	{
		int			m = Min(batch, n - start);
		Unseen	   *rows;
		HttpParallel *reqs;
		TwilioReply *replies;
		int		   *who;

		MemoryContextSwitchTo(batch_cxt);
		rows = palloc0(sizeof(Unseen) * m);
		reqs = palloc0(sizeof(HttpParallel) * m);
		replies = palloc0(sizeof(TwilioReply) * m);
		who = palloc(sizeof(int) * m);
		for (int i = 0; i < m; i++)
		{
			rows[i].sid = sids[start + i];
			rows[i].home = homes[start + i];
			rows[i].k = -1;
		}
		for (;;)
		{
			int			nreq = 0;

			/* each row's next look-up; a row whose accounts are all asked is over */
			for (int i = 0; i < m; i++)
			{
				const char *acct;

				if (rows[i].done)
					continue;
				if ((acct = unseen_account(&rows[i], names, naccounts)) == NULL)
				{
					if (rows[i].unsure)
						store_reconcile_found(rows[i].sid, NULL);
					rows[i].done = true;
					continue;
				}
				memset(&reqs[nreq], 0, sizeof(HttpParallel));
				reqs[nreq].method = HTTP_GET;
				reqs[nreq].url = twilio_account_url_for(acct, "/IncomingPhoneNumbers/%s.json", rows[i].sid);
				who[nreq++] = i;
			}
			if (nreq == 0)
				break;
			twilio_requests_parallel(reqs, nreq, replies);
			for (int j = 0; j < nreq; j++)
			{
				Unseen	   *u = &rows[who[j]];
				TwilioReply *r = &replies[j];

				if (!r->http.complete || r->http.status == 429 || r->http.status >= 500)
					twilio_request(HTTP_GET, reqs[j].url, NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE,
								   "look the number up", r);
				if (r->http.complete && r->http.status < 300 && r->json)
				{
					store_reconcile_found(u->sid, r->json);
					u->done = true;
					continue;
				}
				if (!r->http.complete || r->http.status != 404)
					u->unsure = true;
				u->k++;
			}
		}
		MemoryContextSwitchTo(outer);
		MemoryContextReset(batch_cxt);
	}
	MemoryContextDelete(batch_cxt);
}

/*
 * One reconcile pass: returns the cursor of the drift rows it records (its
 * first fetch runs the comparison; store_reconcile_fetch).
 */
static Portal
reconcile(void)
{
	Datum		live;
	Datum		attempts;
	Datum		accounts_array;
	Datum	   *elems;
	bool	   *nulls;
	int			naccounts;
	Datum	   *listed;
	int			nlisted = 0;
	StringInfoData failures;

	twilio_require_credentials();

	/*
	 * 1. the live rows and the open attempts, before the listing; 2. the
	 * Twilio accounts this database manages (a DBA maps them)
	 */
	store_reconcile_begin(tn_account_sid, &live, &attempts, &accounts_array);
	deconstruct_array(DatumGetArrayTypeP(accounts_array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &naccounts);

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
	look_for_unseen(live, elems, naccounts);

	/* 4. compare and act */
	return store_reconcile_compare(live,
								   PointerGetDatum(construct_array(listed, nlisted, TEXTOID, -1, false,
																   TYPALIGN_INT)),
								   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(failures.data))),
								   attempts, tn_account_sid, recorder_epoch());
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
	Portal		cursor;
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
	cursor = reconcile();
	do
	{
		tt = store_reconcile_fetch(cursor, FINDINGS_BATCH, &n);
		put_findings(rsinfo, tt, n, held);
		SPI_freetuptable(tt);
	} while (n > 0);
	store_reconcile_close(cursor);
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
	Portal		cursor;
	uint64		total = 0;
	uint64		n;
	uint64		m;
	StringInfoData accounts;

	cursor = reconcile();
	/* the accounts it could not list, with why ("AC… (HTTP 401 …), …"), NULL when none */
	initStringInfo(&accounts);
	do
	{
		SPITupleTable *tt = store_reconcile_fetch(cursor, FINDINGS_BATCH, &n);
		int			finding = SPI_fnumber(tt->tupdesc, "finding");
		int			detail = SPI_fnumber(tt->tupdesc, "detail");

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
		total += n;
		SPI_freetuptable(tt);
	} while (n > 0);
	store_reconcile_close(cursor);
	*unreachable = accounts.len ? accounts.data : NULL;
	(void) messaging_reconcile(&m);
	return total + m;
}
