/*
 * bundles.c — what a country requires (Twilio's RegulatoryCompliance
 * Regulations, cached in regulations_cache like prices) and customers'
 * regulatory bundles.
 *
 * A bundle is created at Twilio with its documents (that stays there); a
 * DBA or the application registers it here by SID.  The worker then
 * follows its review (bundle_poll jobs, polling with backoff like hosted
 * orders) until Twilio approves or rejects it; _bundle_seen (SQL) records
 * each status with its history and a NOTIFY.  A purchase of a number whose
 * country and type need a bundle, given none, takes the customer's approved
 * one (bundles_pick), or is refused before any POST; a transfer to another
 * subaccount clones the number's bundle into it first (bundles_clone_to).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "accounts.h"
#include "bundles.h"
#include "errcodes.h"
#include "http.h"
#include "reply.h"
#include "settings.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"

/* Our number type as Twilio's Regulations spell it. */
static const char *
regulation_type(const char *type)
{
	return strcmp(type, "toll_free") == 0 ? "toll free" : type;
}

/*
 * GET the Regulations of a country and type (and end-user type, '' for
 * both), every page; a jsonb array of them.
 */
static Jsonb *
fetch_regulations(const char *iso, const char *type, const char *eut)
{
	StringInfoData url;
	StringInfoData all;
	char	   *next;
	int			count = 0;

	initStringInfo(&url);
	appendStringInfoString(&url, twilio_url(TWILIO_NUMBERS, "/v2/RegulatoryCompliance/Regulations"));
	twilio_query_add(&url, "IsoCountry", iso);
	twilio_query_add(&url, "NumberType", regulation_type(type));
	if (eut[0])
		twilio_query_add(&url, "EndUserType", eut);
	twilio_query_add(&url, "PageSize", "100");
	next = url.data;
	initStringInfo(&all);
	appendStringInfoChar(&all, '[');
	for (int page = 0; next != NULL && page < 20; page++)
	{
		TwilioReply reply;
		JsonbContainer *results;
		JsonbContainer *meta;
		int			n;

		twilio_request(HTTP_GET, next, NULL, HTTP_RETRY_SAFE, "read the regulations", &reply);
		results = reply.json ? jb_array(&reply.json->root, "results") : NULL;
		n = jb_array_size(results);
		for (int i = 0; i < n; i++)
		{
			JsonbContainer *r = jb_array_object(results, i);

			if (r == NULL)
				continue;
			if (count++ > 0)
				appendStringInfoChar(&all, ',');
			appendStringInfoString(&all, JsonbToCString(NULL, r, VARSIZE(reply.json)));
		}
		meta = reply.json ? jb_object(&reply.json->root, "meta") : NULL;
		next = meta ? jb_text(meta, "next_page_url") : NULL;
		/* a next page on Twilio's host is asked of the configured one */
		if (next && strstr(next, "/v2/") != NULL)
			next = twilio_url(TWILIO_NUMBERS, "%s", strstr(next, "/v2/"));
	}
	appendStringInfoChar(&all, ']');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(all.data)));
}

/* The address_requirements of the country's first available number of the type, or NULL. */
static char *
fetch_address_requirement(const char *iso, const char *type)
{
	TwilioReply reply;
	JsonbContainer *list;
	JsonbContainer *first;

	twilio_request(HTTP_GET,
				   twilio_account_url_for(tn_account_sid, "/AvailablePhoneNumbers/%s/%s.json?PageSize=1", iso,
										  validate_type_path(type)),
				   NULL, HTTP_RETRY_SAFE | TWILIO_OK_404, "read the address requirement", &reply);
	if (reply.http.status == 404 || reply.json == NULL)
		return NULL;
	list = jb_array(&reply.json->root, "available_phone_numbers");
	first = jb_array_size(list) > 0 ? jb_array_object(list, 0) : NULL;
	return first ? jb_text(first, "address_requirements") : NULL;
}

PG_FUNCTION_INFO_V1(tn_regulations);

/*
 * _regulations(iso_country, number_type, end_user_type) -> regulations_cache:
 * the cached row while younger than pricing_ttl_s, else fetched again.
 */
Datum
tn_regulations(PG_FUNCTION_ARGS)
{
	char	   *iso = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *eut = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Jsonb	   *regulations;
	char	   *address;
	bool		found;
	Datum		result;

	validate_type_path(type);

	SPI_connect();
	result = store_bundle_regulations_cached(iso, type, eut, tn_pricing_ttl_s, &found);
	if (!found)
	{
		twilio_require_credentials();
		regulations = fetch_regulations(iso, type, eut);
		/* a purchase asks only whether a bundle is needed: no address look-up */
		address = eut[0] ? fetch_address_requirement(iso, type) : NULL;
		result = store_bundle_regulations_save(iso, type, eut, regulations, address);
	}
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* GET a bundle; NULL when Twilio has no such bundle (404). */
static Jsonb *
fetch_bundle(const char *bundle_sid, int flags, TwilioReply *reply)
{
	twilio_request(HTTP_GET, twilio_url(TWILIO_NUMBERS, "/v2/RegulatoryCompliance/Bundles/%s", bundle_sid),
				   NULL, HTTP_RETRY_SAFE | TWILIO_OK_404 | flags, psprintf("fetch bundle %s", bundle_sid), reply);
	if (!reply->http.complete || reply->http.status == 404)
		return NULL;
	return reply->json;
}

/* GET a bundle's Regulation (what country, type and end user it is for). */
static Jsonb *
fetch_regulation(const char *regulation_sid)
{
	TwilioReply reply;

	if (regulation_sid == NULL)
		return NULL;
	twilio_request(HTTP_GET, twilio_url(TWILIO_NUMBERS, "/v2/RegulatoryCompliance/Regulations/%s", regulation_sid),
				   NULL, HTTP_RETRY_SAFE, psprintf("fetch regulation %s", regulation_sid), &reply);
	return reply.json;
}

PG_FUNCTION_INFO_V1(tn_numbers_bundle_register);

/* numbers_bundle_register(account_id, bundle_sid) -> bundles */
Datum
tn_numbers_bundle_register(PG_FUNCTION_ARGS)
{
	int64		account_id = PG_GETARG_INT64(0);
	char	   *sid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Account		acct;
	const char *home;
	TwilioReply reply;
	Jsonb	   *r;
	char	   *owner;
	int64		registered_for;
	Datum		result;

	validate_sid("bundle_sid", sid, "BU");
	twilio_require_credentials();

	SPI_connect();
	accounts_load(account_id, &acct);
	home = acct.twilio_account_sid && acct.twilio_account_sid[0] ? acct.twilio_account_sid : tn_account_sid;
	if (store_bundle_lock(sid, &registered_for) && registered_for != account_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle %s is registered for another account", sid)));

	r = fetch_bundle(sid, 0, &reply);
	if (r == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("Twilio has no bundle %s", sid),
				 errhint("Create the bundle with its end user and documents at Twilio, then register its SID.")));
	owner = jb_text(&r->root, "account_sid");
	if (owner == NULL || strcmp(owner, home) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bundle %s belongs to Twilio account %s, not to %s where account " INT64_FORMAT
						"'s numbers live", sid, owner ? owner : "(none)", home, account_id),
				 errhint("Register a bundle of the account's own Twilio account; a transfer clones bundles between subaccounts.")));
	store_bundle_seen(account_id, sid, r, fetch_regulation(jb_text(&r->root, "regulation_sid")), NULL,
					  tn_hosted_poll_ms);
	result = store_bundle_row(sid);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * The bundle a purchase of phone (iso, type) for the account should send
 * when it was given none: NULL when its country and type need none, the
 * customer's approved bundle when they do; refused (TN003, before any POST)
 * when the customer has none, with what it has in the detail.  Runs inside
 * SPI.
 */
char *
bundles_pick(int64 account_id, const char *twilio_account_sid, const char *phone, const char *iso,
			 const char *type)
{
	char	   *picked;
	char	   *have;

	/* North American numbers need no bundle */
	if (validate_nanp_type(phone))
		return NULL;
	if (!store_bundle_required(account_id, twilio_account_sid, iso, type, &picked, &have))
		return NULL;
	if (picked == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TN_REGULATORY_REQUIREMENT),
				 errmsg("phone number %s requires an approved regulatory bundle", phone),
				 have ?
				 errdetail("The account has no approved bundle for %s %s numbers in Twilio account %s; "
						   "its bundles for them: %s. Nothing was sent to Twilio.",
						   iso, type, twilio_account_sid, have) :
				 errdetail("The account has no bundle for %s %s numbers in Twilio account %s. "
						   "Nothing was sent to Twilio.", iso, type, twilio_account_sid),
				 errhint("Register the customer's bundle with numbers_bundle_register() once Twilio has approved it; "
						 "numbers_requirements('%s', '%s') lists what it must hold.", iso, type)));
	return picked;
}

/*
 * A bundle of to_id in to_sid for a number (iso, type) that uses bundle_sid:
 * the customer's approved one there, or a clone of bundle_sid made at
 * Twilio and registered.  For a transfer; runs inside SPI; a refused clone
 * is raised before anything moves.
 */
char *
bundles_clone_to(const char *bundle_sid, int64 to_id, const char *to_sid, const char *iso, const char *type)
{
	StringInfoData form;
	TwilioReply reply;
	char	   *clone;
	Jsonb	   *r;

	/* the customer's approved bundle there, if it has one */
	clone = store_bundle_pick(to_id, to_sid, iso, type);
	if (clone != NULL)
		return clone;

	initStringInfo(&form);
	twilio_form_add(&form, "TargetAccountSid", to_sid);
	twilio_request(HTTP_POST, twilio_url(TWILIO_NUMBERS, "/v2/RegulatoryCompliance/Bundles/%s/Clones", bundle_sid),
				   form.data, 0, psprintf("clone bundle %s into account %s", bundle_sid, to_sid), &reply);
	clone = reply.json ? jb_text(&reply.json->root, "bundle_sid") : NULL;
	if (clone == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
				 errmsg("Twilio's reply to a bundle clone names no bundle")));
	/* the clone as a bundle, registered for the new owner */
	r = fetch_bundle(clone, 0, &reply);
	if (r == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
				 errmsg("Twilio does not show bundle %s it has just cloned", clone)));
	store_bundle_seen(to_id, clone, r, fetch_regulation(jb_text(&r->root, "regulation_sid")), bundle_sid,
					  tn_hosted_poll_ms);
	return clone;
}

/*
 * bundle_poll: fetch the bundle, record a change; JOB_AGAIN with a growing
 * delay while Twilio still reviews it, JOB_DONE once approved, rejected or
 * gone.  Bundles are polled on the hosted-order intervals.
 */
JobOutcome
bundle_poll_job(const Job *job, char **error, long *again_ms)
{
	Jsonb	   *payload = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(job->payload)));
	char	   *sid = jb_text(&payload->root, "bundle_sid");
	TwilioReply reply;
	Jsonb	   *r;
	char	   *status;
	int			polls;

	if (sid == NULL)
	{
		*error = pstrdup("the job names no bundle");
		return JOB_DONE;
	}
	r = fetch_bundle(sid, TWILIO_NO_ERROR, &reply);
	if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404) ||
		(reply.http.status < 300 && r == NULL))
	{
		*error = twilio_describe_failure(&reply);
		return JOB_RETRY;
	}
	status = store_bundle_seen(0, sid, r, NULL, NULL, tn_hosted_poll_ms);
	if (status == NULL || strcmp(status, "twilio-approved") == 0 || strcmp(status, "twilio-rejected") == 0 ||
		strcmp(status, "deleted") == 0)
		return JOB_DONE;

	if (!store_bundle_polled(sid, &polls))
		return JOB_DONE;
	*again_ms = Min((long) tn_hosted_poll_ms << Min(polls, 20), (long) tn_hosted_poll_max_ms);
	return JOB_AGAIN;
}
