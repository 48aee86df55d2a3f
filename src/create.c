/*
 * create.c — creating something at Twilio exactly once: a number bought
 * (IncomingPhoneNumbers) or a hosted number order filed.
 *
 * Twilio has no idempotency key, so a POST whose reply is lost may or may
 * not have created the resource.  The protocol, for every kind of creation:
 *   1. the intent's attempt is recorded (recorder.c) before the first POST;
 *   2. one POST; a definite answer (created, or refused) ends it;
 *   3. no reply, a 5xx, or a 2xx whose body cannot be read: look the phone
 *      number up, never POST blindly.
 *      What the look-up finds is taken as ours only if it can only be ours:
 *      created within this attempt's time, configured as this attempt
 *      asked (the attempt records a fingerprint of the fields it sent), and
 *      not known to this database as anything else (a row, an order,
 *      another attempt, a queued job, an intent).  Anything else Twilio holds
 *      under that number belongs to someone else: the creation is refused
 *      (nothing charged), and it is never touched;
 *   4. nothing found: for a purchase, POST again after a backoff (a "not
 *      available" answer then is looked up once more: our first POST may
 *      have landed late); for an order, report the outcome as unknown.
 * The worker's compensation of a rolled-back creation whose reply was lost
 * applies the same test (jobs.c), and so does reconcile after a crash.
 * The time in the test is Twilio's clock brought to ours (twclock.c).  A
 * POST that got no reply at all and was not matched to what it created is
 * "unresolved": it may still land until the attempt's deadline, so the
 * intent counts it and the worker watches for it after the transaction.
 *
 * Purchases (purchase.c) and hosted orders (hosted.c) both go through the
 * sequence at the end of this file: the numbers not live here already, the
 * intents reserved for the transaction, then the attempts, the POSTs and
 * what they created recorded (create_all).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/md5.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "create.h"
#include "config.h"
#include "errcodes.h"
#include "http.h"
#include "intents.h"
#include "recorder.h"
#include "reply.h"
#include "settings.h"
#include "store.h"
#include "twilio.h"
#include "xact.h"


/*
 * Which fields a request sends (values[i] non-NULL, in the order of
 * config_fields) and the md5 of "field=value\n" for each, as
 * _created_by_attempt computes it from a resource.
 */
void
create_fingerprint(const char *const *values, uint16 *mask, char *md5)
{
	StringInfoData buf;
	const char *errstr = NULL;

	initStringInfo(&buf);
	*mask = 0;
	for (int i = 0; i < CONFIG_NFIELDS; i++)
		if (values[i])
		{
			*mask |= (uint16) (1 << i);
			appendStringInfo(&buf, "%s=%s\n", config_fields[i].name, values[i]);
		}
	if (!pg_md5_hash(buf.data, buf.len, md5, &errstr))
		elog(ERROR, "could not compute an md5: %s", errstr ? errstr : "out of memory");
}

/*
 * Could r (a resource Twilio holds under the phone number) have been
 * created by an attempt of ours started at started and over by deadline,
 * sending the configuration fields (text[]) whose fingerprint is md5 — and
 * by no one else?  The time, configuration and "known here" parts are SQL
 * (_created_by_attempt); intents are asked directly.  SPI connected.
 */
bool
create_made_by_attempt(JsonbContainer *r, const char *phone, const char *twilio_account_sid,
				   TimestampTz started, TimestampTz deadline, Datum fields, const char *md5,
				   int except_slot)
{
	char	   *sid = jb_text(r, "sid");

	if (sid == NULL || intents_sid_in_flight(sid, except_slot))
		return false;
	return store_created_by_attempt(JsonbToCString(NULL, r, 0), phone, twilio_account_sid, started, deadline,
									fields, md5);
}

/* What a look-up after a lost reply came to. */
typedef enum LookUp
{
	LOOKED_UP_OURS,				/* found what our request created */
	LOOKED_UP_NOTHING,			/* Twilio holds nothing under the number */
	LOOKED_UP_OTHERS			/* Twilio holds it for someone else */
} LookUp;

static LookUp
look_up(const Creation *c, const Intent *it, char **resource)
{
	TwilioReply reply;
	bool		ok;
	List	   *found = c->kind->look_up(c->twilio_account_sid, c->phone, &reply, &ok);
	ListCell   *lc;

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_TN_OUTCOME_UNKNOWN),
				 errmsg("could not establish what Twilio did with the request"),
				 errdetail("The request got no reply, and the look-up of %s failed too (%s). Nothing is charged.",
						   c->phone,
						   reply.http.complete ? psprintf("HTTP %ld", reply.http.status) : reply.http.error),
				 errhint("If Twilio did act on it, the background worker undoes it."),
				 errcontext("Twilio request: %s", c->what)));
	foreach(lc, found)
	{
		JsonbContainer *r = lfirst(lc);

		if (create_made_by_attempt(r, c->phone, c->twilio_account_sid, it->started_at, GetCurrentTimestamp(),
							   config_fields_array(it->config_mask), it->config_md5, c->slot))
		{
			*resource = JsonbToCString(NULL, r, 0);
			return LOOKED_UP_OURS;
		}
	}
	return found == NIL ? LOOKED_UP_NOTHING : LOOKED_UP_OTHERS;
}

static void
refuse_held_by_others(const Creation *c)
{
	ereport(ERROR,
			(errcode(ERRCODE_TN_NUMBER_NOT_AVAILABLE),
			 errmsg("phone number %s is held at Twilio by someone else", c->phone),
			 errdetail("The request got no definite reply; what Twilio holds under the number "
					   "was not created by it. Nothing is charged."),
			 errhint("Search again with numbers_search()."),
			 errcontext("Twilio request: %s", c->what)));
}

/*
 * Run the protocol; returns the created resource as JSON text, or raises
 * (Twilio's refusal, someone else's number, or an outcome that could not be
 * established).  The intent (c->slot, its attempt recorded) learns whether
 * the request may have reached Twilio and, at the end, the resource's SID.
 * first: what came of the first POST when it was already sent (several at
 * once, create_parallel), NULL: send it.  A first POST Twilio surely did not
 * act on (429, or a connection that never opened) is sent again the usual
 * way, with the HTTP layer's retries.
 */
static char *
create_once(const Creation *c, const TwilioReply *first)
{
	Intent		it;
	char	   *resource = NULL;
	int			unresolved = 0;

	if (first && ((first->http.complete && first->http.status == 429) ||
				  (!first->http.complete && !first->http.maybe_applied && !first->http.tls_failed)))
		first = NULL;
	intent_get(c->slot, &it);
	Assert(it.attempt_state == ATTEMPT_RECORDED);

	for (int attempt = 0;; attempt++)
	{
		TwilioReply reply;
		LookUp		seen;

		intent_set_posted(c->slot, true);
		if (attempt == 0 && first)
			reply = *first;
		else
			twilio_request(HTTP_POST, c->url, c->form, TWILIO_NO_ERROR, c->what, &reply);

		/*
		 * No reply at all: the request may still be on its way to Twilio and
		 * land later, whatever the look-up finds now.  A reply (even a 5xx)
		 * ends the request: what it did, the look-up sees.
		 */
		if (!reply.http.complete && reply.http.maybe_applied)
			intent_set_unresolved(c->slot, ++unresolved);

		if (reply.http.complete && reply.http.status < 300 && reply.json != NULL)
		{
			resource = twilio_json_text(&reply);
			break;
		}
		/* a 2xx whose body cannot be read created it all the same: look it up */
		if (reply.http.complete && reply.http.status >= 300 && reply.http.status < 500)
		{
			/* after a lost reply, "not available" may be our own first POST */
			if (attempt > 0 && reply.twilio_code == 21422)
			{
				seen = look_up(c, &it, &resource);
				if (seen == LOOKED_UP_OURS)
				{
					if (unresolved > 0)
						intent_set_unresolved(c->slot, --unresolved);
					break;
				}
			}
			/* a definite refusal created nothing (unless an earlier try did) */
			if (attempt == 0)
				intent_set_posted(c->slot, false);
			twilio_raise(&reply, c->what);
		}
		if (!reply.http.complete && !reply.http.maybe_applied)
		{
			if (attempt == 0)
				intent_set_posted(c->slot, false);
			twilio_raise(&reply, c->what);
		}

		/* no reply (or a 5xx, after which Twilio may have acted too): look first */
		seen = look_up(c, &it, &resource);
		if (seen == LOOKED_UP_OURS)
		{
			/* what a request without a reply created is found: it has landed */
			if (unresolved > 0)
				intent_set_unresolved(c->slot, --unresolved);
			break;
		}
		if (seen == LOOKED_UP_OTHERS)
			refuse_held_by_others(c);
		if (!c->post_again || attempt >= tn_max_retries)
		{
			if (reply.http.complete)
				twilio_raise(&reply, c->what);
			ereport(ERROR,
					(errcode(ERRCODE_TN_OUTCOME_UNKNOWN),
					 errmsg("no reply from Twilio"),
					 errdetail_plural("%s; Twilio holds nothing under %s after %d attempt. Nothing is charged.",
									  "%s; Twilio holds nothing under %s after %d attempts. Nothing is charged.",
									  attempt + 1, reply.http.error, c->phone, attempt + 1),
					 errhint("If a late request still creates it, the background worker undoes it."),
					 errcontext("Twilio request: %s", c->what)));
		}
		http_sleep(http_backoff_ms(attempt + 1));
	}

	{
		/* remember what Twilio created, for the worker if we roll back */
		Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(resource)));

		intent_set_sid(c->slot, jb_text(&j->root, "sid"), c->twilio_account_sid);
	}
	return resource;
}

/*
 * Several creations whose first POSTs are all sent at once (within the
 * cluster's request budget), each the first step of the protocol above.
 * Everything Twilio surely created is remembered first (its SID in its
 * intent: the worker undoes it if anything below fails or the caller rolls
 * back); then each of the others goes on, one at a time, from what its
 * first POST came to — a refusal raises, a lost reply is looked up, one
 * Twilio did not act on (429) is sent again.
 */
static void
create_parallel(const Creation *c, int n, char **resources)
{
	HttpParallel *reqs = palloc0(sizeof(HttpParallel) * n);
	TwilioReply *replies = palloc0(sizeof(TwilioReply) * n);

	for (int i = 0; i < n; i++)
	{
		reqs[i].method = HTTP_POST;
		reqs[i].url = c[i].url;
		reqs[i].form = c[i].form;
		intent_set_posted(c[i].slot, true);
	}
	twilio_requests_parallel(reqs, n, replies);
	for (int i = 0; i < n; i++)
	{
		TwilioReply *r = &replies[i];

		resources[i] = NULL;
		if (r->http.complete && r->http.status < 300 && r->json != NULL)
		{
			resources[i] = twilio_json_text(r);
			intent_set_sid(c[i].slot, jb_text(&r->json->root, "sid"), c[i].twilio_account_sid);
		}
	}
	for (int i = 0; i < n; i++)
		if (resources[i] == NULL)
			resources[i] = create_once(&c[i], &replies[i]);
}

/*
 * None of the numbers may be live here already (orders_too: nor in a hosted
 * order still on its way).  Checked before anything is reserved or sent;
 * the unique indexes are the last word.  SPI connected.
 */
void
create_require_free(char **phones, int n, bool orders_too)
{
	char	   *phone;
	char	   *taken;

	if (store_number_taken(phones, n, orders_too, &phone, &taken))
		ereport(ERROR,
				(errcode(ERRCODE_TN_NUMBER_NOT_AVAILABLE),
				 errmsg("phone number %s is already %s", phone, taken)));
}

/*
 * The intents of n creations of a kind by an account, tracked by the
 * transaction (undone at Twilio if it rolls back): purchases hold funds
 * (holds[i]) and the call returns what the account's other purchases in
 * flight hold; other kinds hold nothing (holds NULL) and it returns 0.
 * Raises if another transaction is creating one of the numbers.
 */
int64
create_reserve(int kind, int64 account_id, int n, char **phones, const int64 *holds, int *slots)
{
	int64		others = 0;

	xact_reserve(n);
	if (kind == INTENT_PURCHASE)
		others = intents_hold(account_id, n, phones, holds, slots);
	else
		for (int i = 0; i < n; i++)
			slots[i] = intent_begin(kind, account_id, 0, phones[i]);
	for (int i = 0; i < n; i++)
		xact_track_intent(slots[i], true);
	return others;
}

/*
 * Create n things at Twilio, all or nothing: their attempts committed first
 * (recorder.c; cfg's fields fingerprinted, NULL: the request has none), then
 * one POST each — all at once when there are several — with the protocol
 * above, then what Twilio created: record(resources, arg) writes it here
 * while the recorder commits the SIDs into the attempts (both done before
 * this returns).  resources[i]: the created resource as JSON text.  Any
 * failure raises; what was created is undone by the worker when the
 * transaction rolls back.  All are created in the same Twilio account.
 */
void
create_all(const Creation *c, int n, const NumberConfig *cfg, char **resources, CreateRecord record, void *arg)
{
	int		   *slots = palloc(sizeof(int) * n);
	uint16		mask = 0;
	char		md5[33];

	for (int i = 0; i < n; i++)
		slots[i] = c[i].slot;
	if (cfg)
	{
		const char *values[CONFIG_NFIELDS];

		config_values(cfg, values);
		create_fingerprint(values, &mask, md5);
	}
	recorder_open_attempts(slots, n, c[0].twilio_account_sid, mask, cfg ? md5 : NULL);
	if (n == 1)
		resources[0] = create_once(&c[0], NULL);
	else
		create_parallel(c, n, resources);
	intents_request_sids(slots, n);
	record(resources, arg);
	recorder_record_sids(slots, n);
}
