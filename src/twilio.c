/*
 * twilio.c — Twilio's API as the rest of the extension sees it: base URLs
 * and paths, form and query encoding, one request wrapper that parses the
 * reply into jsonb, and the mapping of Twilio's errors onto SQLSTATEs.
 *
 * Replies are read with PostgreSQL's own JSON machinery (jsonb), through
 * reply.c's readers, which accept Twilio's wire forms and the spec's.
 */
#include "postgres.h"

#include <stdarg.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "compat.h"
#include "reply.h"
#include "twilio.h"
#include "calllog.h"
#include "credentials.h"
#include "errcodes.h"
#include "http.h"
#include "settings.h"

/*
 * Every attempt of every request lands in the call log, with Twilio's error
 * code read from its reply (the HTTP layer knows nothing of Twilio).
 */
static void
log_attempt(HttpMethod method, const char *url, const HttpResult *result, const char *body, double ms)
{
	int			code = 0;

	if (result->complete && result->status >= 400 && body != NULL)
		twilio_error_fields(body, &code, NULL);
	calllog_record(http_method_name(method), url, result->complete ? result->status : 0, code, ms,
				   result->complete ? NULL : result->error);
}

/*
 * What the last request that failed as an outage met (the worker resets it
 * before each job): no reply or a 5xx, or a refusal of our credentials.
 */
TwilioOutage twilio_outage_seen = TWILIO_OUTAGE_NONE;

/* Refuse to run without credentials, with a hint that says who sets them. */
void
twilio_require_credentials(void)
{
	bool		have_token;
	bool		have_key;

	credentials_load();
	have_token = tn_auth_token[0] != '\0';
	have_key = tn_api_key[0] != '\0';
	if (tn_account_sid[0] == '\0' || (!have_token && !have_key))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Twilio credentials are not configured"),
				 errhint("A superuser names a credentials file in twilio_numbers.credentials_file (or sets "
						 "twilio_numbers.account_sid and twilio_numbers.auth_token, or twilio_numbers.api_key "
						 "and twilio_numbers.api_secret), then reloads.")));
}

static const char *
base_url(TwilioHost host)
{
	switch (host)
	{
		case TWILIO_API:
			return tn_api_url;
		case TWILIO_PRICING:
			return tn_pricing_url;
		case TWILIO_TRUNKING:
			return tn_trunking_url;
		case TWILIO_NUMBERS:
			return tn_numbers_url;
		case TWILIO_MESSAGING:
			return tn_messaging_url;
	}
	return "";
}

/* Append s to buf, percent-encoding all but RFC 3986's unreserved bytes. */
static void
append_escaped(StringInfo buf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 15]);
		}
	}
}

static char *vurl(const char *base, const char *fmt, va_list args) pg_attribute_printf(2, 0);

static char *
vurl(const char *base, const char *fmt, va_list args)
{
	StringInfoData buf;
	size_t		blen = strlen(base);

	initStringInfo(&buf);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	appendBinaryStringInfo(&buf, base, (int) blen);
	for (;;)
	{
		va_list		copy;
		int			needed;

		va_copy(copy, args);
		needed = appendStringInfoVA(&buf, fmt, copy);
		va_end(copy);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	return buf.data;
}

/* base URL of host + path built from fmt; path parts must be pre-escaped */
char *
twilio_url(TwilioHost host, const char *fmt,...)
{
	va_list		args;
	char	   *url;

	va_start(args, fmt);
	url = vurl(base_url(host), fmt, args);
	va_end(args);
	return url;
}

/*
 * {api_url}/2010-04-01/Accounts/{account_sid} + path, for a given
 * (sub)account; NULL or "" means the main account.
 */
char *
twilio_account_url_for(const char *account_sid, const char *fmt,...)
{
	va_list		args;
	StringInfoData base;
	char	   *url;

	initStringInfo(&base);
	appendStringInfo(&base, "%s/2010-04-01/Accounts/", tn_api_url);
	append_escaped(&base, account_sid && account_sid[0] ? account_sid : tn_account_sid);
	va_start(args, fmt);
	url = vurl(base.data, fmt, args);
	va_end(args);
	return url;
}

/* The reply's JSON as text (for handing to SQL), or "null". */
char *
twilio_json_text(const TwilioReply *reply)
{
	if (reply->json == NULL)
		return pstrdup("null");
	return JsonbToCString(NULL, &reply->json->root, VARSIZE(reply->json));
}

/* key=value&... in application/x-www-form-urlencoded; NULL values skipped */
void
twilio_form_add(StringInfo form, const char *key, const char *value)
{
	if (value == NULL)
		return;
	if (form->len > 0)
		appendStringInfoChar(form, '&');
	append_escaped(form, key);
	appendStringInfoChar(form, '=');
	append_escaped(form, value);
}

/* ?key=value or &key=value on a URL; NULL values skipped */
void
twilio_query_add(StringInfo url, const char *key, const char *value)
{
	if (value == NULL)
		return;
	appendStringInfoChar(url, strchr(url->data, '?') ? '&' : '?');
	append_escaped(url, key);
	appendStringInfoChar(url, '=');
	append_escaped(url, value);
}

/*
 * Pull "code" and "message" out of a Twilio error body without throwing:
 * the body may be anything (a proxy's HTML page, a truncated reply).
 */
typedef struct ErrorFieldsState
{
	int			depth;
	int			field;			/* 0 none, 1 code, 2 message */
	int			code;
	char	   *message;
} ErrorFieldsState;

static TN_JSON_ACTION
ef_object_start(void *state)
{
	((ErrorFieldsState *) state)->depth++;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
ef_object_end(void *state)
{
	((ErrorFieldsState *) state)->depth--;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
ef_field_start(void *state, char *fname, bool isnull)
{
	ErrorFieldsState *s = state;

	s->field = 0;
	if (s->depth == 1 && strcmp(fname, "code") == 0)
		s->field = 1;
	else if (s->depth == 1 && strcmp(fname, "message") == 0)
		s->field = 2;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
ef_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ErrorFieldsState *s = state;

	if (s->field == 1 && (tokentype == JSON_TOKEN_NUMBER || tokentype == JSON_TOKEN_STRING))
		s->code = atoi(token);
	else if (s->field == 2 && tokentype == JSON_TOKEN_STRING)
		s->message = token;
	s->field = 0;
	TN_JSON_ACTION_DONE;
}

void
twilio_error_fields(const char *body, int *code, char **message)
{
	ErrorFieldsState state = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;

	*code = 0;
	if (message)
		*message = NULL;
	if (body == NULL || body[0] != '{')
		return;

	sem.semstate = &state;
	sem.object_start = ef_object_start;
	sem.object_end = ef_object_end;
	sem.object_field_start = ef_field_start;
	sem.scalar = ef_scalar;

	lex = tn_json_lexer((char *) body, strlen(body), true);
	(void) pg_parse_json(lex, &sem);
	*code = state.code;
	if (message)
		*message = state.message;
}

/*
 * Parse a reply body into jsonb; NULL for an empty body.  The body is
 * validated first without throwing: an invalid one is *bad (soft) or TN007;
 * any other error (out of memory) is left to be what it is.
 */
static Jsonb *
parse_body(const HttpResult *http, const char *what, bool soft, bool *bad)
{
	JsonLexContext *lex;

	*bad = false;
	if (http->body_len == 0)
		return NULL;
	lex = tn_json_lexer(http->body, (int) http->body_len, false);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
	{
		*bad = true;
		if (soft)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
				 errmsg("Twilio's reply is not valid JSON"),
				 errdetail("HTTP status %ld, %zu bytes received.", http->status, http->body_len),
				 errhint("The reply was cut short or damaged on the way; retry the call."),
				 errcontext("Twilio request: %s", what)));
	}
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(http->body)));
}


/*
 * Several requests at once (http_perform_parallel: one attempt each, never
 * retried): each reply read as twilio_request reads one with
 * TWILIO_NO_ERROR, nothing raised; the caller judges each.  Every attempt
 * lands in the call log.
 */
void
twilio_requests_parallel(HttpParallel *reqs, int n, TwilioReply *replies)
{
	http_attempt_hook = log_attempt;
	http_perform_parallel(reqs, n);
	for (int i = 0; i < n; i++)
	{
		TwilioReply *reply = &replies[i];
		bool		bad_json;

		memset(reply, 0, sizeof(*reply));
		reply->http = reqs[i].result;
		if (!reply->http.complete)
			continue;
		if (reply->http.status >= 400)
			twilio_error_fields(reply->http.body, &reply->twilio_code, &reply->twilio_message);
		reply->json = parse_body(&reply->http, "", true, &bad_json);
	}
}

/*
 * Send a request to Twilio and parse its reply.  Errors (transport failure,
 * Twilio error status, unparsable body) are raised with our SQLSTATEs unless
 * flags say the caller wants them back; "what" names the request in the
 * error's context ("buy +14155550100").
 */
void
twilio_request(HttpMethod method, const char *url, const char *form,
			   int flags, const char *what, TwilioReply *reply)
{
	bool		bad_json = false;

	memset(reply, 0, sizeof(*reply));
	http_attempt_hook = log_attempt;
	http_perform(method, url, form, flags & HTTP_RETRY_SAFE, &reply->http);
	if (!reply->http.complete || reply->http.status >= 500)
		twilio_outage_seen = TWILIO_OUTAGE_UNREACHABLE;
	else if (reply->http.status == 401 || reply->http.status == 403)
		twilio_outage_seen = TWILIO_OUTAGE_AUTH;

	if (!reply->http.complete)
	{
		if (flags & TWILIO_NO_ERROR)
			return;
		twilio_raise(reply, what);
	}

	if (reply->http.status >= 400)
		twilio_error_fields(reply->http.body, &reply->twilio_code, &reply->twilio_message);

	/* the caller reads a successful body itself (search_reply.c) */
	if ((flags & TWILIO_RAW_BODY) && reply->http.status < 400)
		return;

	reply->json = parse_body(&reply->http, what,
							 (flags & TWILIO_NO_ERROR) || reply->http.status >= 400,
							 &bad_json);

	if (reply->http.status >= 400)
	{
		if ((flags & TWILIO_OK_404) && reply->http.status == 404)
			return;
		if (flags & TWILIO_NO_ERROR)
			return;
		twilio_raise(reply, what);
	}
	if (bad_json && !(flags & TWILIO_NO_ERROR))
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
				 errmsg("Twilio's reply is not valid JSON"),
				 errcontext("Twilio request: %s", what)));
}

/*
 * A look-up by phone number: GET url (?PhoneNumber=phone), then the entries of
 * the reply's list_key whose phone_number is exactly phone (a List of
 * JsonbContainer *, maybe empty), or NIL with *ok false when the look-up
 * itself failed (reply says why).
 */
static List *
lookup_by_phone(const char *base_url, const char *list_key, const char *phone, int flags,
				const char *what, TwilioReply *reply, bool *ok)
{
	StringInfoData url;
	JsonbContainer *list;
	List	   *found = NIL;
	int			n;

	initStringInfo(&url);
	appendStringInfoString(&url, base_url);
	twilio_query_add(&url, "PhoneNumber", phone);
	twilio_request(HTTP_GET, url.data, NULL, TWILIO_NO_ERROR | flags, what, reply);
	*ok = reply->http.complete && reply->http.status < 300 && reply->json != NULL;
	if (!*ok)
		return NIL;
	list = jb_array(&reply->json->root, list_key);
	n = jb_array_size(list);
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *e = jb_array_object(list, i);
		char	   *p = e ? jb_text(e, "phone_number") : NULL;

		if (p && strcmp(p, phone) == 0)
			found = lappend(found, e);
	}
	return found;
}

/* DELETE a resource; true when it is gone (2xx, or 404: already gone). */
static bool
delete_resource(const char *url, const char *what, char **error)
{
	TwilioReply reply;

	twilio_request(HTTP_DELETE, url, NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, what, &reply);
	if (reply.http.complete && (reply.http.status < 300 || reply.http.status == 404))
		return true;
	*error = twilio_describe_failure(&reply);
	return false;
}

/*
 * The IncomingPhoneNumbers Twilio holds under this phone number (how a lost
 * purchase reply is resolved: Twilio has no idempotency key).
 */
List *
twilio_owned_by_phone(const char *account_sid, const char *phone, TwilioReply *reply, bool *ok)
{
	return lookup_by_phone(twilio_account_url_for(account_sid, "/IncomingPhoneNumbers.json"),
						   "incoming_phone_numbers", phone, 0, "look the number up", reply, ok);
}

/* Release an IncomingPhoneNumber; true when it is gone. */
bool
twilio_release_number(const char *account_sid, const char *sid, char **error)
{
	return delete_resource(twilio_account_url_for(account_sid, "/IncomingPhoneNumbers/%s.json", sid),
						   "release the number", error);
}

/* A short description of a failed Twilio exchange, for last_error. */
char *
twilio_describe_failure(const TwilioReply *reply)
{
	if (!reply->http.complete)
		return psprintf("no reply: %s", reply->http.error);
	if (reply->twilio_code)
		return psprintf("HTTP %ld, Twilio error %d: %s", reply->http.status, reply->twilio_code,
						reply->twilio_message ? reply->twilio_message : "");
	return psprintf("HTTP %ld", reply->http.status);
}

/*
 * The hosted number orders Twilio holds for this phone number.  Orders are not
 * per subaccount in the path: account_sid is not needed.
 */
List *
twilio_hosted_orders_by_phone(const char *account_sid, const char *phone, TwilioReply *reply, bool *ok)
{
	return lookup_by_phone(twilio_url(TWILIO_NUMBERS, "/v2/HostedNumber/Orders"), "items", phone,
						   HTTP_RETRY_SAFE, "look the hosted order up", reply, ok);
}

/* Cancel a hosted order at Twilio; true when it is gone. */
bool
twilio_cancel_hosted_order(const char *account_sid, const char *sid, char **error)
{
	return delete_resource(twilio_url(TWILIO_NUMBERS, "/v2/HostedNumber/Orders/%s", sid),
						   "cancel the hosted order", error);
}

/* Is this Twilio code one of the regulatory (address/bundle/identity) refusals? */
static bool
is_regulatory_code(int code)
{
	switch (code)
	{
		case 21453:				/* address validation failed */
		case 21613:				/* the address or bundle is not on file in the account (transfers too) */
		case 21631:				/* an address is required / does not satisfy */
		case 21649:				/* a regulatory bundle is required */
		case 21650:				/* an identity document is required */
			return true;
	}
	return false;
}

/* Raise the error a failed Twilio request deserves; "what" names the request. */
void
twilio_raise(const TwilioReply *reply, const char *what)
{
	const HttpResult *http = &reply->http;
	int			code = reply->twilio_code;
	const char *message = reply->twilio_message ? reply->twilio_message : "(no message)";

	if (!http->complete)
	{
		if (http->tls_failed)
			ereport(ERROR,
					(errcode(ERRCODE_TN_TWILIO_UNREACHABLE),
					 errmsg("Twilio's TLS certificate could not be verified"),
					 errdetail("%s.", http->error),
					 errhint("Certificate verification is always on; if Twilio is reached through a proxy "
							 "with its own CA, a superuser sets twilio_numbers.ca_file."),
					 errcontext("Twilio request: %s", what)));
		if (http->maybe_applied)
			ereport(ERROR,
					(errcode(ERRCODE_TN_TWILIO_UNREACHABLE),
					 errmsg("no reply from Twilio"),
					 errdetail_plural("%s (after %d attempt).", "%s (after %d attempts).", http->attempts,
									  http->error, http->attempts),
					 errhint("Check twilio_numbers.timeout_ms and the network path to Twilio."),
					 errcontext("Twilio request: %s", what)));
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_UNREACHABLE),
				 errmsg("Twilio is unreachable"),
				 errdetail_plural("%s (after %d attempt).", "%s (after %d attempts).", http->attempts,
								  http->error, http->attempts),
				 errhint("Check the network path to Twilio and the twilio_numbers.*_url settings."),
				 errcontext("Twilio request: %s", what)));
	}

	if (http->status == 401 || http->status == 403 || code == 20003)
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_AUTH_FAILED),
				 errmsg("Twilio rejected the credentials"),
				 errdetail("Twilio error %d: %s (HTTP %ld).", code, message, http->status),
				 errhint("A superuser checks twilio_numbers.account_sid and twilio_numbers.auth_token "
						 "(or api_key and api_secret)."),
				 errcontext("Twilio request: %s", what)));
	if (http->status == 429)
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_RATE_LIMITED),
				 errmsg("Twilio is rate limiting this account"),
				 errdetail_plural("Twilio error %d: %s (HTTP 429, %d attempt).",
								  "Twilio error %d: %s (HTTP 429, %d attempts).", http->attempts,
								  code, message, http->attempts),
				 errhint("Retry later, or raise twilio_numbers.max_retries."),
				 errcontext("Twilio request: %s", what)));
	if (code == 21422 || code == 21452)
		ereport(ERROR,
				(errcode(ERRCODE_TN_NUMBER_NOT_AVAILABLE),
				 errmsg("the phone number is not available at Twilio"),
				 errdetail("Twilio error %d: %s (HTTP %ld).", code, message, http->status),
				 errhint("Someone else may have bought it; search again with numbers_search()."),
				 errcontext("Twilio request: %s", what)));
	if (is_regulatory_code(code))
		ereport(ERROR,
				(errcode(ERRCODE_TN_REGULATORY_REQUIREMENT),
				 errmsg("Twilio requires regulatory information for this number"),
				 errdetail("Twilio error %d: %s (HTTP %ld).", code, message, http->status),
				 errhint("Pass the address_sid, bundle_sid or identity_sid the number's country requires; "
						 "numbers_search() shows address_requirements."),
				 errcontext("Twilio request: %s", what)));
	if (http->status >= 500)
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_UNREACHABLE),
				 errmsg("Twilio failed with HTTP status %ld", http->status),
				 errdetail_plural("Twilio error %d: %s (after %d attempt).",
								  "Twilio error %d: %s (after %d attempts).", http->attempts,
								  code, message, http->attempts),
				 errhint("Twilio had a server error; try again later."),
				 errcontext("Twilio request: %s", what)));
	ereport(ERROR,
			(errcode(ERRCODE_TN_TWILIO_REFUSED),
			 errmsg("Twilio refused the request"),
			 errdetail("Twilio error %d: %s (HTTP %ld).", code, message, http->status),
			 errhint("See https://www.twilio.com/docs/errors/%d.", code),
			 errcontext("Twilio request: %s", what)));
}

