/*
 * jobs.c — what the background worker does for each kind of queued job.
 *
 *   release        DELETE the number at Twilio after its release committed,
 *                  in whichever managed account holds it now; 204 or 404
 *                  everywhere marks the row released.
 *   compensate     undo a purchase whose transaction rolled back: release
 *                  the number at Twilio unless a live row owns it.  By SID
 *                  when Twilio answered; when the reply was lost, only what
 *                  the purchase's recorded attempt can have created
 *                  (create.c's test) — never anything else under the number.
 *                  A POST of the purchase that got no reply may still land
 *                  until the attempt's deadline: the job watches for it
 *                  (also after a commit, leaving the committed number alone).
 *   resync         put Twilio back in step with the committed row after a
 *                  configuration change, trunk move or transfer rolled back.
 *   hosted_poll    follow a hosted order (hosted.c).
 *   hosted_cancel  undo a hosted order whose transaction rolled back, the
 *                  same way as compensate.
 *   messaging_resync  put a number's Messaging Service at Twilio back in
 *                  step with the committed row (messaging.c).
 *
 * Each runs inside the worker's transaction for the job (the job row is
 * locked FOR UPDATE SKIP LOCKED).  Twilio's failures come back as "retry
 * later" with a description; unexpected errors are caught by the worker.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "jobs.h"
#include "bundles.h"
#include "change_kinds.h"
#include "create.h"
#include "hosted.h"
#include "http.h"
#include "intents.h"
#include "messaging.h"
#include "queue.h"
#include "release.h"
#include "reply.h"
#include "settings.h"
#include "store.h"
#include "twilio.h"

/* Release a number after its release committed; the row is then released. */
static bool
run_release(const Job *job, char **error)
{
	if (job->sid && !queue_release_number(job->account_sid, job->sid, error))
		return false;
	store_queue_number_released(job->number_id);
	return true;
}

/*
 * Undo what a rolled-back creation left at Twilio.  With a SID: remove it
 * unless a committed row owns it.  Without (the reply was lost): remove only
 * what the job's recorded attempt can have created; anything else under the
 * number is someone else's.
 *
 * An attempt lives until no request of it can land: when some of its POSTs
 * got no reply and were not matched to what they created (the payload's
 * "unresolved", from create.c), each may still create the number at Twilio
 * until the attempt's deadline.  The job then keeps looking the number up
 * until it has found that many creations besides the answered one, or the
 * deadline passed; every creation found is removed and added to the
 * attempt's created_sids.  The attempt is closed at the end, with what was
 * done (resources_made: how many it created).
 */
static JobOutcome
undo_creation(const Job *job, const ChangeKind *u, char **error, long *again_ms)
{
	StoreAttemptFacts facts;
	TwilioReply reply;
	List	   *found;
	ListCell   *lc;
	bool		ok;
	char	   *kept_sid = NULL;
	char	   *account;
	TimestampTz started;
	TimestampTz deadline;
	TimestampTz until;
	Datum		fields;
	char	   *md5;
	int			unresolved;
	int			made;
	int			made_unanswered;
	bool		sid_done;
	bool		committed;

	/* a purchase of the number in flight may be about to own what we see */
	if (intent_buying(job->phone))
	{
		*again_ms = 1000;
		return JOB_AGAIN;
	}

	if (job->attempt_id == 0 ||
		!store_attempt_undo_facts(job->attempt_id, job->payload, job->sid, &facts))
	{
		/* no attempt row (a job queued before attempts were recorded): by SID only */
		if (job->sid)
		{
			if (!u->kept(job->sid) && !u->remove(job->account_sid, job->sid, error))
				return JOB_RETRY;
			return JOB_DONE;
		}
		*error = pstrdup("no recorded attempt proves what the lost request created; reconcile reports it");
		return JOB_DONE;
	}
	account = facts.account_sid;
	started = facts.started;
	deadline = facts.deadline;
	fields = facts.fields;
	md5 = facts.md5;
	unresolved = facts.unresolved;
	made = facts.made;
	sid_done = facts.sid_done;
	committed = facts.committed;

	if (job->sid && !sid_done && committed)
	{
		/* a committed creation: it stays; only what its other POSTs made is undone */
		store_attempt_made(job->attempt_id, job->sid);
		made++;
	}
	else if (job->sid && !sid_done)
	{
		/* the creation Twilio answered (first run of the job) */
		if (u->kept(job->sid))
		{
			queue_close_attempt(job->attempt_id, "committed", job->sid);
			return JOB_DONE;
		}
		if (!u->remove(job->account_sid, job->sid, error))
			return JOB_RETRY;
		store_attempt_made(job->attempt_id, job->sid);
		made++;
		if (unresolved == 0)
		{
			queue_close_attempt(job->attempt_id, "compensated", job->sid);
			return JOB_DONE;
		}
	}
	/* creations found besides the answered one: the requests without a reply that landed */
	made_unanswered = made - (job->sid ? 1 : 0);

	found = u->look_up(account, job->phone, &reply, &ok);
	if (!ok)
	{
		*error = twilio_describe_failure(&reply);
		return JOB_RETRY;
	}
	foreach(lc, found)
	{
		JsonbContainer *r = lfirst(lc);
		char	   *sid = jb_text(r, "sid");

		if (sid != NULL && u->kept(sid))
			kept_sid = sid;		/* the purchase committed after all */
		if (sid == NULL || kept_sid == sid ||
			!create_made_by_attempt(r, job->phone, account, started, deadline, fields, md5, -1))
			continue;
		if (!u->remove(account, sid, error))
			return JOB_RETRY;
		store_attempt_made(job->attempt_id, sid);
		made++;
		made_unanswered++;
	}
	if (kept_sid && made == 0 && !committed)
	{
		queue_close_attempt(job->attempt_id, "committed", kept_sid);
		return JOB_DONE;
	}

	/*
	 * Every request without a reply is accounted for: done.  Otherwise one
	 * may still land: until the attempt's deadline when it said so; a lost
	 * request of an attempt that did not (a crash's, queued by reconcile)
	 * within about a request's time.
	 */
	if (unresolved > 0)
		until = made_unanswered >= unresolved ? 0 : deadline;
	else if (made > 0)
		until = 0;
	else
		until = Min(deadline, TimestampTzPlusMilliseconds(job->created_at, 2 * (int64) tn_timeout_ms));
	if (GetCurrentTimestamp() < until)
	{
		if (unresolved > 0)
			store_queue_watching(job->job_id, until);
		*again_ms = Max(100, Min(1000, (long) ((until - GetCurrentTimestamp()) / 1000)));
		return JOB_AGAIN;
	}
	queue_close_attempt(job->attempt_id, committed ? "committed" : made > 0 ? "compensated" : "nothing_bought", NULL);
	return JOB_DONE;
}

/* GET a number's resource; NULL on 404; false (with *error) on failure. */
static bool
fetch_number(const char *account_sid, const char *sid, TwilioReply *reply, char **error)
{
	twilio_request(HTTP_GET, twilio_account_url_for(account_sid, "/IncomingPhoneNumbers/%s.json", sid),
				   NULL, TWILIO_NO_ERROR, "fetch the number", reply);
	if (reply->http.complete && (reply->http.status < 300 || reply->http.status == 404))
		return true;
	*error = twilio_describe_failure(reply);
	return false;
}

static bool
run_resync(const Job *job, char **error)
{
	StoreResyncRow row;
	char	   *sid;
	char	   *acct;
	char	   *status;
	char	   *address_sid;
	char	   *bundle_sid;
	char	   *other = NULL;
	TwilioReply reply;
	Jsonb	   *push;
	StringInfoData form;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (!store_queue_number_for_resync(job->number_id, &row))
		return true;
	sid = row.sid;
	acct = row.account_sid;
	status = row.status;
	address_sid = row.address_sid;
	bundle_sid = row.bundle_sid;
	if (sid == NULL || strcmp(status, "releasing") == 0 || strcmp(status, "released") == 0)
		return true;

	if (!fetch_number(acct, sid, &reply, error))
		return false;

	if (reply.http.status == 404 && job->payload)
	{
		/* a rolled-back transfer left it in another account: move it back */
		Jsonb	   *p = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(job->payload)));

		other = jb_text(&p->root, "other_account_sid");
		if (other)
		{
			TwilioReply found;

			if (!fetch_number(other, sid, &found, error))
				return false;
			if (found.http.status < 300)
			{
				initStringInfo(&form);
				twilio_form_add(&form, "AccountSid", acct ? acct : tn_account_sid);
				/* a regulated number moves with the address and bundle it has in that account */
				twilio_form_add(&form, "AddressSid", address_sid);
				twilio_form_add(&form, "BundleSid", bundle_sid);
				twilio_request(HTTP_POST, twilio_account_url_for(other, "/IncomingPhoneNumbers/%s.json", sid),
							   form.data, TWILIO_NO_ERROR, "move the number back", &reply);
				if (!reply.http.complete || reply.http.status >= 300)
				{
					*error = twilio_describe_failure(&reply);
					return false;
				}
			}
		}
	}
	if (reply.http.status == 404 || reply.json == NULL)
	{
		*error = pstrdup("the number is not at Twilio any more; reconcile reports it");
		return true;
	}

	/* push the row's configuration where Twilio differs */
	push = store_queue_config_to_push(job->number_id, reply.json);

	initStringInfo(&form);
	it = JsonbIteratorInit(&push->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && key)
			twilio_form_add(&form, key, v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : "");
	}
	if (form.len > 0)
	{
		twilio_request(HTTP_POST, twilio_account_url_for(acct, "/IncomingPhoneNumbers/%s.json", sid),
					   form.data, TWILIO_NO_ERROR, "restore the number's configuration", &reply);
		if (!reply.http.complete || reply.http.status >= 300 || reply.json == NULL)
		{
			*error = twilio_describe_failure(&reply);
			return false;
		}
	}

	/* remember Twilio's (now matching) view */
	store_queue_number_twilio(job->number_id, reply.json);
	return true;
}

/* undo a rolled-back creation (its kind says how) */
static JobOutcome
run_undo(const Job *job, char **error, long *again_ms)
{
	return undo_creation(job, change_kind_undone_by(job->kind), error, again_ms);
}

static JobOutcome
run_release_job(const Job *job, char **error, long *again_ms)
{
	return run_release(job, error) ? JOB_DONE : JOB_RETRY;
}

static JobOutcome
run_resync_job(const Job *job, char **error, long *again_ms)
{
	return run_resync(job, error) ? JOB_DONE : JOB_RETRY;
}

/* What each kind of queued job runs. */
static const struct
{
	const char *kind;
	JobOutcome	(*run) (const Job *job, char **error, long *again_ms);
}			jobs[] = {
	{"release", run_release_job},
	{"compensate", run_undo},
	{"hosted_cancel", run_undo},
	{"resync", run_resync_job},
	{"hosted_poll", hosted_poll_job},
	{"bundle_poll", bundle_poll_job},
	{"messaging_resync", messaging_resync_job},
};

JobOutcome
jobs_run(const Job *job, char **error, long *again_ms)
{
	*error = NULL;
	*again_ms = 0;
	twilio_require_credentials();
	for (int i = 0; i < lengthof(jobs); i++)
		if (strcmp(job->kind, jobs[i].kind) == 0)
			return jobs[i].run(job, error, again_ms);
	*error = psprintf("unknown job kind \"%s\"", job->kind);
	return JOB_RETRY;
}
