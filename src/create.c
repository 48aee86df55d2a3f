/*
 * create.c — creating something at Twilio exactly once: a number bought
 * (IncomingPhoneNumbers) or a hosted number order filed.
 *
 * Twilio has no idempotency key, so a POST whose reply is lost may or may
 * not have created the resource.  The protocol, for every kind of creation:
 *   1. the intent's attempt is recorded (recorder.c) before the first POST;
 *   2. one POST; a definite answer (created, or refused) ends it;
 *   3. no reply, or a 5xx: look the phone number up, never POST blindly.
 *      What the look-up finds is taken as ours only if it can only be ours:
 *      created within this attempt's time, not known to this database as
 *      anything else (a row, an order, another attempt, a queued job, an
 *      intent), and configured as we asked.  Anything else Twilio holds
 *      under that number belongs to someone else: the creation is refused
 *      (nothing charged), and it is never touched;
 *   4. nothing found: for a purchase, POST again after a backoff (a "not
 *      available" answer then is looked up once more: our first POST may
 *      have landed late); for an order, report the outcome as unknown.
 * The worker's compensation of a rolled-back creation whose reply was lost
 * applies the same test (jobs.c), and so does reconcile after a crash.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "twilio_numbers.h"

/*
 * Could r (a resource Twilio holds under the phone number) have been
 * created by an attempt of ours started at started and over by deadline,
 * and by no one else?  The time and "known here" parts are SQL
 * (_created_by_attempt); intents are asked directly.  SPI connected.
 */
bool
created_by_attempt(JsonbContainer *r, const char *phone, const char *twilio_account_sid,
				   TimestampTz started, TimestampTz deadline, int except_slot)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[5];
	bool		isnull;
	char	   *sid = jb_text(r, "sid");

	if (sid == NULL || tn_sid_in_flight(sid, except_slot))
		return false;
	args[0] = CStringGetTextDatum(JsonbToCString(NULL, r, 0));
	args[1] = CStringGetTextDatum(phone);
	args[2] = CStringGetTextDatum(twilio_account_sid);
	args[3] = TimestampTzGetDatum(started);
	args[4] = TimestampTzGetDatum(deadline);
	if (SPI_execute_with_args("SELECT twilio_numbers._created_by_attempt($1::jsonb, $2, $3, $4, $5)",
							  5, types, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compare the resource with the attempt");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
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
	List	   *found = c->look_up(c->twilio_account_sid, c->phone, &reply, &ok);
	ListCell   *lc;

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_TN_OUTCOME_UNKNOWN),
				 errmsg("could not establish whether Twilio acted on the request to %s", c->what),
				 errdetail("The request got no reply, and the look-up failed too (%s). Nothing is charged.",
						   reply.http.complete ? psprintf("HTTP %ld", reply.http.status) : reply.http.error),
				 errhint("If Twilio did act on it, the background worker undoes it.")));
	foreach(lc, found)
	{
		JsonbContainer *r = lfirst(lc);

		if (created_by_attempt(r, c->phone, c->twilio_account_sid, it->started_at,
							   GetCurrentTimestamp(), c->slot) &&
			(c->matches == NULL || c->matches(r, c->match_arg)))
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
			 errdetail("The request to %s got no definite reply; what Twilio holds under the number "
					   "was not created by it. Nothing is charged.", c->what),
			 errhint("Search again with numbers_search().")));
}

/*
 * Run the protocol; returns the created resource as JSON text, or raises
 * (Twilio's refusal, someone else's number, or an outcome that could not be
 * established).  The intent (c->slot, its attempt recorded) learns whether
 * the request may have reached Twilio and, at the end, the resource's SID.
 */
char *
twilio_create_once(const Creation *c)
{
	Intent		it;
	char	   *resource = NULL;

	tn_intent_get(c->slot, &it);
	Assert(it.attempt_state == ATTEMPT_RECORDED);

	for (int attempt = 0;; attempt++)
	{
		TwilioReply reply;
		LookUp		seen;

		tn_intent_set_posted(c->slot, true);
		twilio_request(HTTP_POST, c->url, c->form, TWILIO_NO_ERROR, c->what, &reply);

		if (reply.http.complete && reply.http.status < 300 && reply.json != NULL)
		{
			resource = twilio_json_text(&reply);
			break;
		}
		if (reply.http.complete && reply.http.status < 500)
		{
			/* after a lost reply, "not available" may be our own first POST */
			if (attempt > 0 && reply.twilio_code == 21422)
			{
				seen = look_up(c, &it, &resource);
				if (seen == LOOKED_UP_OURS)
					break;
			}
			/* a definite refusal created nothing (unless an earlier try did) */
			if (attempt == 0)
				tn_intent_set_posted(c->slot, false);
			twilio_raise(&reply, c->what);
		}
		if (!reply.http.complete && !reply.http.maybe_applied)
		{
			if (attempt == 0)
				tn_intent_set_posted(c->slot, false);
			twilio_raise(&reply, c->what);
		}

		/* no reply (or a 5xx, after which Twilio may have acted too): look first */
		seen = look_up(c, &it, &resource);
		if (seen == LOOKED_UP_OURS)
			break;
		if (seen == LOOKED_UP_OTHERS)
			refuse_held_by_others(c);
		if (!c->post_again || attempt >= tn_max_retries)
		{
			if (reply.http.complete)
				twilio_raise(&reply, c->what);
			ereport(ERROR,
					(errcode(ERRCODE_TN_OUTCOME_UNKNOWN),
					 errmsg("could not %s: no reply from Twilio", c->what),
					 errdetail_plural("%s; Twilio holds nothing under %s after %d attempt. Nothing is charged.",
									  "%s; Twilio holds nothing under %s after %d attempts. Nothing is charged.",
									  attempt + 1, reply.http.error, c->phone, attempt + 1),
					 errhint("If a late request still creates it, the background worker undoes it.")));
		}
		http_sleep(http_backoff_ms(attempt + 1));
	}

	{
		/* remember what Twilio created, for the worker if we roll back */
		Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(resource)));

		tn_intent_set_sid(c->slot, jb_text(&j->root, "sid"), c->twilio_account_sid);
	}
	return resource;
}
