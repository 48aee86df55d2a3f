/*
 * messaging.c — a customer's number in a Messaging Service (the sender pool
 * of Messaging v1: /v1/Services/{MG}/PhoneNumbers), and emergency
 * registrations removed before a release.
 *
 * numbers_messaging_assign / _unassign work like trunk assignment
 * (change.c): in the caller's transaction, the number's row locked, an
 * intent recorded before the request (change_kinds.c), Twilio's answer
 * written into the row.  If the caller rolls back, the recorder queues a
 * messaging_resync job naming the service the transaction touched; the
 * worker then makes Twilio match the committed row: out of that service,
 * in the row's own (messaging_resync_job).  A reply lost on the way is
 * looked up (the membership fetched) before the call fails.  A crash loses
 * the intent with shared memory: reconcile lists the services and their
 * pools and queues the same re-sync for every live number whose service at
 * Twilio differs from its row (messaging_reconcile).
 *
 * Twilio's rules are checked before any request where the database knows
 * enough — one service per number (Twilio's 21712), at most 400 numbers in
 * a service (21714), SMS capability (21715) — and Twilio's own refusals of
 * them get the same errors.  Services are those of the main account
 * (twilio_numbers.account_sid); a number in a subaccount is refused.
 *
 * Emergency addresses: reconcile keeps each row's emergency status as
 * Twilio's listing shows it (a registration completes or fails after the
 * request).  Twilio refuses to release a number whose emergency address is
 * registered.  A release (or an undo) refused with HTTP 400
 * looks at the number; if it has an emergency address, it is removed and
 * the release sent again (emergency_clear_for_release, used by queue.c).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "messaging.h"
#include "errcodes.h"
#include "http.h"
#include "intents.h"
#include "reply.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"
#include "xact.h"

/* Twilio's limit on a Messaging Service's sender pool (error 21714). */
#define MESSAGING_POOL_LIMIT 400

/* A live number of the account, locked, as assignment needs it. */
typedef StoreMessagingNumber MsgNumber;

/* Lock the number's row (errors as _live_number says) and check it can be in a service. */
static void
lock_number(int64 account_id, const char *phone, MsgNumber *n)
{
	const char *account_sid;

	store_messaging_lock_number(account_id, phone, n);
	account_sid = n->account_sid;
	if (n->sid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phone number %s has no Twilio SID yet", phone)));
	if (account_sid && account_sid[0] && strcmp(account_sid, tn_account_sid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phone number %s is in Twilio subaccount %s", phone, account_sid),
				 errdetail("Twilio's Messaging API reaches a subaccount's services only with that subaccount's "
						   "own credentials; this database manages those of the main account "
						   "(twilio_numbers.account_sid). Nothing was sent to Twilio.")));
}

/* Record the intent before changing Twilio; other_service is the service the change touches. */
static void
track(const MsgNumber *n, const char *other_service)
{
	int			slot;

	xact_reserve(1);
	slot = intent_change(INTENT_MESSAGING, n->number_id, n->phone);
	xact_track_intent(slot, false);
	intent_set_sid(slot, n->sid, other_service);
}

/*
 * Refuse by one of Twilio's pool rules.  Before any request (reply NULL):
 * what the database knows; after (reply set): Twilio's own words.
 */
pg_noreturn static void
refuse(int code, const MsgNumber *n, const char *service, const TwilioReply *reply)
{
	const char *sent = reply ? psprintf("Twilio error %d: %s (HTTP %ld).", code,
										reply->twilio_message ? reply->twilio_message : "",
										reply->http.status)
		: NULL;

	switch (code)
	{
		case 21712:
		case 21710:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 n->service_sid ? errmsg("phone number %s is already in Messaging Service %s", n->phone,
											 n->service_sid)
					 : errmsg("phone number %s is already in another Messaging Service", n->phone),
					 sent ? errdetail("%s", sent)
					 : errdetail("Twilio allows one Messaging Service per number (error 21712). "
								 "Nothing was sent to Twilio."),
					 errhint("Take it out with numbers_messaging_unassign() first.")));
			break;
		case 21714:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("Messaging Service %s already holds %d numbers", service, MESSAGING_POOL_LIMIT),
					 sent ? errdetail("%s", sent)
					 : errdetail("Twilio allows at most %d numbers in a Messaging Service (error 21714). "
								 "Nothing was sent to Twilio.", MESSAGING_POOL_LIMIT),
					 errhint("Put the number into another Messaging Service, or take numbers out of this one.")));
			break;
		case 21715:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("phone number %s cannot send SMS", n->phone),
					 sent ? errdetail("%s", sent)
					 : errdetail("Twilio adds only SMS-capable numbers to a Messaging Service (error 21715). "
								 "Nothing was sent to Twilio."),
					 errhint("numbers_search(sms => true) finds SMS-capable numbers.")));
			break;
	}
	elog(ERROR, "unexpected Twilio code %d", code);
}

PG_FUNCTION_INFO_V1(tn_numbers_messaging_assign);

/* numbers_messaging_assign(account_id, phone_number, service_sid) -> owned_numbers */
Datum
tn_numbers_messaging_assign(PG_FUNCTION_ARGS)
{
	int64		account_id;
	char	   *phone;
	char	   *service;
	MsgNumber	n;
	Datum		result;

	shmem_require_worker();
	account_id = validate_account_arg(fcinfo, 0);
	phone = validate_text_arg(fcinfo, 1);
	validate_e164("phone_number", phone);
	service = validate_text_arg(fcinfo, 2);
	if (service == NULL || service[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("service_sid is required"),
				 errhint("numbers_messaging_unassign() takes a number out of its Messaging Service.")));
	validate_sid("service_sid", service, "MG");
	twilio_require_credentials();

	SPI_connect();
	lock_number(account_id, phone, &n);
	if (n.service_sid == NULL || strcmp(n.service_sid, service) != 0)
	{
		StringInfoData form;
		TwilioReply reply;
		char	   *what = psprintf("add %s to Messaging Service %s", phone, service);
		char	   *url = twilio_url(TWILIO_MESSAGING, "/v1/Services/%s/PhoneNumbers", service);
		ListCell   *lc;

		if (n.service_sid)
			refuse(21712, &n, service, NULL);
		if (!n.sms)
			refuse(21715, &n, service, NULL);
		if (store_messaging_pool_size(service) >= MESSAGING_POOL_LIMIT)
			refuse(21714, &n, service, NULL);

		/* if we roll back, the worker takes it out of this service again */
		track(&n, service);
		/* a savepoint of ours rolled back may have left it in another service (until we end) */
		foreach(lc, xact_rolled_back_others(INTENT_MESSAGING, n.number_id))
		{
			const char *other = lfirst(lc);

			if (strcmp(other, service) != 0)
				twilio_request(HTTP_DELETE,
							   twilio_url(TWILIO_MESSAGING, "/v1/Services/%s/PhoneNumbers/%s", other, n.sid),
							   NULL, TWILIO_OK_404 | HTTP_RETRY_SAFE,
							   psprintf("remove %s from Messaging Service %s", phone, other), &reply);
		}
		initStringInfo(&form);
		twilio_form_add(&form, "PhoneNumberSid", n.sid);
		twilio_request(HTTP_POST, url, form.data, TWILIO_NO_ERROR, what, &reply);
		if (!reply.http.complete && reply.http.maybe_applied)
		{
			/* the reply was lost: did the number join? */
			TwilioReply found;

			twilio_request(HTTP_GET, psprintf("%s/%s", url, n.sid), NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE,
						   "look the sender up", &found);
			if (!(found.http.complete && found.http.status < 300))
				twilio_raise(&reply, what);
		}
		else if (!reply.http.complete)
			twilio_raise(&reply, what);
		else if (reply.http.status >= 300)
		{
			switch (reply.twilio_code)
			{
				case 21710:		/* in this very service already: what we want */
					break;
				case 21712:
				case 21714:
				case 21715:
					n.service_sid = NULL;
					refuse(reply.twilio_code, &n, service, &reply);
					break;
				default:
					if (reply.http.status == 404)
						ereport(ERROR,
								(errcode(ERRCODE_NO_DATA_FOUND),
								 errmsg("Twilio has no Messaging Service %s for phone number %s", service, phone),
								 errdetail("Twilio error %d: %s (HTTP 404).", reply.twilio_code,
										   reply.twilio_message ? reply.twilio_message : ""),
								 errhint("Messaging Services are created at Twilio, in the account "
										 "twilio_numbers.account_sid names.")));
					twilio_raise(&reply, what);
			}
		}
		store_messaging_set_service(n.number_id, service);
	}
	result = store_messaging_number(n.number_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_messaging_unassign);

/* numbers_messaging_unassign(account_id, phone_number) -> owned_numbers */
Datum
tn_numbers_messaging_unassign(PG_FUNCTION_ARGS)
{
	int64		account_id;
	char	   *phone;
	MsgNumber	n;
	TwilioReply reply;
	Datum		result;

	shmem_require_worker();
	account_id = validate_account_arg(fcinfo, 0);
	phone = validate_text_arg(fcinfo, 1);
	validate_e164("phone_number", phone);
	twilio_require_credentials();

	SPI_connect();
	lock_number(account_id, phone, &n);
	if (n.service_sid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phone number %s is not in a Messaging Service", phone)));
	/* if we roll back, the worker puts it back into this service */
	track(&n, n.service_sid);
	/* a 404 means it is not there (any more): what we want */
	twilio_request(HTTP_DELETE,
				   twilio_url(TWILIO_MESSAGING, "/v1/Services/%s/PhoneNumbers/%s", n.service_sid, n.sid),
				   NULL, TWILIO_OK_404 | HTTP_RETRY_SAFE,
				   psprintf("remove %s from Messaging Service %s", phone, n.service_sid), &reply);
	store_messaging_set_service(n.number_id, NULL);
	result = store_messaging_number(n.number_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * messaging_resync: put Twilio back in step with the committed row after an
 * assignment rolled back (payload other_service_sid: the service the
 * transaction touched) or reconcile found a difference (payload: the
 * service Twilio has it in).  Out of the other service, into the row's own.
 */
JobOutcome
messaging_resync_job(const Job *job, char **error, long *again_ms)
{
	char	   *sid;
	char	   *status;
	char	   *ours;
	char	   *other = NULL;
	TwilioReply reply;

	if (!store_messaging_resync_number(job->number_id, &sid, &status, &ours))
		return JOB_DONE;
	/* a released number left its service with the release */
	if (sid == NULL || strcmp(status, "releasing") == 0 || strcmp(status, "released") == 0)
		return JOB_DONE;
	if (job->payload)
	{
		Jsonb	   *p = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(job->payload)));

		other = jb_text(&p->root, "other_service_sid");
	}

	if (other && other[0] && (ours == NULL || strcmp(other, ours) != 0))
	{
		twilio_request(HTTP_DELETE, twilio_url(TWILIO_MESSAGING, "/v1/Services/%s/PhoneNumbers/%s", other, sid),
					   NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "take the number out of the Messaging Service",
					   &reply);
		if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
		{
			*error = twilio_describe_failure(&reply);
			return JOB_RETRY;
		}
	}
	if (ours)
	{
		char	   *url = twilio_url(TWILIO_MESSAGING, "/v1/Services/%s/PhoneNumbers", ours);

		twilio_request(HTTP_GET, psprintf("%s/%s", url, sid), NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE,
					   "look the sender up", &reply);
		if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
		{
			*error = twilio_describe_failure(&reply);
			return JOB_RETRY;
		}
		if (reply.http.status == 404)
		{
			StringInfoData form;

			initStringInfo(&form);
			twilio_form_add(&form, "PhoneNumberSid", sid);
			twilio_request(HTTP_POST, url, form.data, TWILIO_NO_ERROR, "put the number back into its Messaging Service",
						   &reply);
			if (!reply.http.complete || (reply.http.status >= 300 && reply.twilio_code != 21710))
			{
				*error = twilio_describe_failure(&reply);
				return JOB_RETRY;
			}
		}
	}
	return JOB_DONE;
}

/*
 * GET a v1 list page by page (meta.next_page_url), calling add for each
 * page's reply; NULL when every page was read, else what went wrong.
 */
static char *
list_pages(char *url, const char *what, void (*add) (Jsonb *page, const char *arg), const char *arg)
{
	while (url != NULL)
	{
		TwilioReply reply;
		char	   *next;

		twilio_request(HTTP_GET, url, NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, what, &reply);
		if (!reply.http.complete || reply.http.status >= 300 || reply.json == NULL)
			return twilio_describe_failure(&reply);
		add(reply.json, arg);
		next = jb_text(jb_object(&reply.json->root, "meta"), "next_page_url");
		url = next && next[0] ? next : NULL;
	}
	return NULL;
}

static List *listed_services = NIL;

/* Remember the services of one page. */
static void
add_services(Jsonb *page, const char *arg)
{
	JsonbContainer *list = jb_array(&page->root, "services");

	for (int i = 0; i < jb_array_size(list); i++)
	{
		char	   *sid = jb_text(jb_array_object(list, i), "sid");

		if (sid)
			listed_services = lappend(listed_services, sid);
	}
}

/* Record one page of a service's pool in reconcile's work table. */
static void
add_senders(Jsonb *page, const char *service)
{
	store_messaging_seen_add(page, service);
}

/*
 * Reconcile's Messaging Service pass (SPI connected), after the numbers
 * were listed: first the emergency statuses of the listing go into the rows
 * (Twilio registers an address on its own time); then every service of the
 * main account and its pool are listed, compared with the live rows, and a
 * re-sync is queued for each difference (_reconcile_messaging) — skipped
 * while no number was ever assigned, so that a database that does not use
 * Messaging Services sends no request for them.  Returns the drift rows recorded
 * (*n of them), or NULL.
 */
SPITupleTable *
messaging_reconcile(uint64 *n)
{
	char	   *failed;

	*n = 0;
	/* a schema not updated yet (0.3) has none of this: nothing to do */
	if (!store_messaging_present())
		return NULL;
	/* the emergency statuses Twilio's listing shows (no request of its own) */
	store_messaging_reconcile_emergency();
	if (!store_messaging_in_use())
		return NULL;
	store_messaging_seen_reset();

	listed_services = NIL;
	failed = list_pages(twilio_url(TWILIO_MESSAGING, "/v1/Services?PageSize=1000"),
						"list the Messaging Services", add_services, NULL);
	for (ListCell *lc = list_head(listed_services); failed == NULL && lc != NULL; lc = lnext(listed_services, lc))
	{
		char	   *service = lfirst(lc);

		failed = list_pages(twilio_url(TWILIO_MESSAGING, "/v1/Services/%s/PhoneNumbers?PageSize=1000", service),
							"list a Messaging Service's numbers", add_senders, service);
	}
	listed_services = NIL;
	if (failed)
	{
		/* without every pool, no difference can be told: nothing is concluded */
		ereport(WARNING,
				(errmsg("twilio_numbers: Messaging Services not reconciled: %s", failed)));
		return NULL;
	}
	return store_messaging_reconcile(tn_account_sid, n);
}

/*
 * Twilio refused to release a number (HTTP 400): if an emergency address
 * is what holds it (Twilio requires it removed first), remove it.  *cleared
 * says whether it did; false (with *error) when Twilio could not be asked.
 */
bool
emergency_clear_for_release(const char *account_sid, const char *sid, bool *cleared, char **error)
{
	TwilioReply reply;
	char	   *url = twilio_account_url_for(account_sid, "/IncomingPhoneNumbers/%s.json", sid);
	char	   *address;
	StringInfoData form;

	*cleared = false;
	twilio_request(HTTP_GET, url, NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "look the number up", &reply);
	if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
	{
		*error = twilio_describe_failure(&reply);
		return false;
	}
	if (reply.http.status == 404 || reply.json == NULL)
		return true;
	address = jb_text(&reply.json->root, "emergency_address_sid");
	if (address == NULL || address[0] == '\0')
		return true;
	initStringInfo(&form);
	twilio_form_add(&form, "EmergencyAddressSid", "");
	twilio_request(HTTP_POST, url, form.data, TWILIO_NO_ERROR, "remove the emergency address", &reply);
	if (!reply.http.complete || reply.http.status >= 300)
	{
		*error = twilio_describe_failure(&reply);
		return false;
	}
	*cleared = true;
	return true;
}
