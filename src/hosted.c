/*
 * hosted.c — hosted number orders (Twilio's Numbers v2 HostedNumber Orders): host a
 * number the customer owns elsewhere on Twilio for SMS.
 *
 * numbers_hosted_order files the order in the caller's transaction, like a
 * purchase: an intent first (a rolled-back order is canceled at Twilio by
 * the worker), one POST, the row and its history last.  The worker then
 * follows the order (hosted_poll jobs, polling with backoff) through Twilio's
 * life cycle; _hosted_order_seen (SQL) records each change, NOTIFYs it, and
 * turns a completed order into an owned number (origin hosted) exactly once.
 * numbers_hosted_cancel asks Twilio to cancel, and says so plainly when
 * Twilio no longer can.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "hosted.h"
#include "accounts.h"
#include "change_kinds.h"
#include "create.h"
#include "errcodes.h"
#include "http.h"
#include "intents.h"
#include "queue.h"
#include "recorder.h"
#include "reply.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"
#include "xact.h"

/* The statuses in which Twilio cancels an order. */
static const char *const cancellable[] = {"received", "pending-verification", "verified", "pending-loa"};

static char *
required_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	char	   *v = validate_text_arg(fcinfo, n);

	if (v == NULL || v[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is required", name)));
	return v;
}

/* What numbers_hosted_order is asked to file. */
typedef struct HostedOrder
{
	char	   *phone;
	char	   *email;
	char	   *contact;
	char	   *address_sid;
	char	   *friendly;
	char	   *sms_url;
	char	   *sms_method;
	char	   *status_callback;
} HostedOrder;

/* Read and check numbers_hosted_order's arguments (from the second on). */
static void
read_order(FunctionCallInfo fcinfo, HostedOrder *o)
{
	o->phone = required_arg(fcinfo, 1, "phone_number");
	validate_e164("phone_number", o->phone);
	if (o->phone[1] != '1')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only US and Canadian numbers can be hosted, not %s", o->phone),
				 errhint("Twilio hosts landline and toll-free numbers of the US and Canada for SMS.")));
	o->email = required_arg(fcinfo, 2, "contact_email");
	if (strchr(o->email, '@') == NULL || strchr(strchr(o->email, '@'), '.') == NULL ||
		strpbrk(o->email, " \t\r\n") != NULL || strlen(o->email) > 254)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("contact_email must be an e-mail address, not \"%s\"", o->email)));
	o->contact = required_arg(fcinfo, 3, "contact_phone_number");
	validate_e164("contact_phone_number", o->contact);
	o->address_sid = required_arg(fcinfo, 4, "address_sid");
	validate_sid("address_sid", o->address_sid, "AD");
	o->friendly = validate_text_arg(fcinfo, 5);
	o->sms_url = validate_text_arg(fcinfo, 6);
	o->sms_method = validate_text_arg(fcinfo, 7);
	o->status_callback = validate_text_arg(fcinfo, 8);
	validate_friendly_name(o->friendly);
	validate_url("sms_url", o->sms_url);
	validate_http_method("sms_method", o->sms_method);
	validate_url("status_callback", o->status_callback);
}

/* Hosting the number must be priced in the account's currency. */
static void
check_hosted_price(const HostedOrder *o, const Account *acct)
{
	char	   *currency = store_hosted_price_currency(o->phone);

	if (strcmp(currency, acct->currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hosting %s is priced in %s, but account " INT64_FORMAT " pays in %s", o->phone,
						currency, acct->account_id, acct->currency),
				 errhint("Add a twilio_numbers.price_list row with number_type 'hosted' in %s.", acct->currency)));
}

/* Twilio's form for filing the order. */
static char *
order_form(const HostedOrder *o, const Account *acct)
{
	StringInfoData form;

	initStringInfo(&form);
	twilio_form_add(&form, "PhoneNumber", o->phone);
	twilio_form_add(&form, "ContactPhoneNumber", o->contact);
	twilio_form_add(&form, "AddressSid", o->address_sid);
	twilio_form_add(&form, "Email", o->email);
	twilio_form_add(&form, "SmsCapability", "true");
	twilio_form_add(&form, "FriendlyName", o->friendly);
	twilio_form_add(&form, "SmsUrl", o->sms_url);
	twilio_form_add(&form, "SmsMethod", o->sms_method);
	twilio_form_add(&form, "StatusCallbackUrl", o->status_callback);
	if (acct->twilio_account_sid)
		twilio_form_add(&form, "AccountSid", acct->twilio_account_sid);
	return form.data;
}

/* Append , "key": value to a JSON object being built, if value is set. */
static void
json_add(StringInfo buf, const char *key, const char *value)
{
	if (value == NULL)
		return;
	appendStringInfoString(buf, buf->len > 1 ? ", " : "");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
}

/* What we asked for, where Twilio's resource does not say (JSON text). */
static char *
order_ours(const HostedOrder *o)
{
	StringInfoData ours;

	initStringInfo(&ours);
	appendStringInfoChar(&ours, '{');
	json_add(&ours, "contact_email", o->email);
	json_add(&ours, "contact_phone_number", o->contact);
	json_add(&ours, "address_sid", o->address_sid);
	json_add(&ours, "friendly_name", o->friendly);
	json_add(&ours, "sms_url", o->sms_url);
	json_add(&ours, "sms_method", o->sms_method);
	json_add(&ours, "status_callback", o->status_callback);
	appendStringInfoChar(&ours, '}');
	return ours.data;
}

/* What record_filed writes, and the row it wrote. */
typedef struct Filed
{
	int64		account_id;
	const HostedOrder *order;
	SPITupleTable *row;
} Filed;

/* create_all's record step: the order Twilio created becomes its row. */
static void
record_filed(char **resources, void *arg)
{
	Filed	   *f = arg;

	f->row = store_hosted_order_record(f->account_id, resources[0], order_ours(f->order), tn_hosted_poll_ms);
}

PG_FUNCTION_INFO_V1(tn_numbers_hosted_order);

/*
 * numbers_hosted_order(account_id, phone_number, contact_email,
 *   contact_phone_number, address_sid, friendly_name, sms_url, sms_method,
 *   status_callback) -> hosted_orders
 */
Datum
tn_numbers_hosted_order(PG_FUNCTION_ARGS)
{
	int64		account_id;
	HostedOrder o;
	Account		acct;
	Creation	c = {0};
	char	   *resource;
	int			slot;
	Filed		filed = {0, &o, NULL};
	Datum		result;

	shmem_require_worker();
	account_id = validate_account_arg(fcinfo, 0);
	filed.account_id = account_id;
	read_order(fcinfo, &o);
	twilio_require_credentials();

	SPI_connect();

	/* the account, the number's state here, the price: all before any request */
	accounts_load_active(account_id, &acct, "only active accounts can host numbers");
	check_hosted_price(&o, &acct);
	create_require_free(&o.phone, 1, true);

	/* the intent and its recorded attempt, create.c's one POST, the row */
	(void) create_reserve(INTENT_HOSTED, account_id, 1, &o.phone, NULL, &slot);
	c.kind = change_kind(INTENT_HOSTED);
	c.slot = slot;
	c.url = twilio_url(TWILIO_NUMBERS, "/v2/HostedNumber/Orders");
	c.form = order_form(&o, &acct);
	c.what = psprintf("file the hosted order for %s", o.phone);
	c.phone = o.phone;
	c.twilio_account_sid = accounts_twilio_sid(&acct);
	c.post_again = false;
	create_all(&c, 1, NULL, &resource, record_filed, &filed);
	result = PointerGetDatum(SPI_returntuple(filed.row->vals[0], filed.row->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_hosted_cancel);

/* numbers_hosted_cancel(account_id, order_sid) -> hosted_orders */
Datum
tn_numbers_hosted_cancel(PG_FUNCTION_ARGS)
{
	int64		account_id = PG_GETARG_INT64(0);
	char	   *order_sid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		owner;
	char	   *status;
	TwilioReply reply;
	SPITupleTable *tt;
	Datum		result;

	shmem_require_worker();
	if (order_sid[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order_sid is required")));
	validate_sid("order_sid", order_sid, "HR");
	twilio_require_credentials();

	SPI_connect();
	if (!store_hosted_order_lock(order_sid, &owner, &status) || owner != account_id)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("hosted order %s is not an order of account " INT64_FORMAT, order_sid, account_id)));
	if (strcmp(status, "completed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hosted order %s is completed and can no longer be canceled", order_sid),
				 errhint("The number is hosted and owned now; release it with numbers_release().")));
	if (strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hosted order %s is already %s", order_sid, status)));

	/* ask Twilio: only it knows whether the order is still cancellable */
	twilio_request(HTTP_DELETE, twilio_url(TWILIO_NUMBERS, "/v2/HostedNumber/Orders/%s", order_sid), NULL,
				   TWILIO_NO_ERROR, psprintf("cancel hosted order %s", order_sid), &reply);
	if (reply.http.complete && reply.http.status >= 400 && reply.http.status < 500 &&
		reply.http.status != 404 && reply.http.status != 401 && reply.http.status != 403 &&
		reply.http.status != 429)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Twilio can no longer cancel hosted order %s", order_sid),
				 errdetail("Twilio error %d: %s (HTTP %ld).", reply.twilio_code,
						   reply.twilio_message ? reply.twilio_message : "(no message)", reply.http.status),
				 errhint("Orders can be canceled while they are %s, %s, %s or %s; "
						 "the order was last seen here as \"%s\".",
						 cancellable[0], cancellable[1], cancellable[2], cancellable[3], status)));
	if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
		twilio_raise(&reply, psprintf("cancel hosted order %s", order_sid));

	/* 204, or 404 (already gone): the order is canceled */
	(void) store_hosted_order_seen(order_sid, (Datum) 0, (Datum) 0);
	tt = store_hosted_order(order_sid);
	result = PointerGetDatum(SPI_returntuple(tt->vals[0], tt->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* ---- the worker's side ----------------------------------------------------- */

/*
 * hosted_poll: fetch the order, record what changed, turn a completed one
 * into an owned number.  JOB_AGAIN with a growing delay while the order is
 * still on its way; JOB_DONE once it is completed, failed or gone.
 */
JobOutcome
hosted_poll_job(const Job *job, char **error, long *again_ms)
{
	Jsonb	   *payload = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(job->payload)));
	char	   *order_sid = jb_text(&payload->root, "order_sid");
	TwilioReply reply;
	TwilioReply number;
	Datum		order = (Datum) 0;	/* 0: Twilio has no such order any more */
	Datum		fetched = (Datum) 0;
	char	   *status;
	int			polls;

	if (order_sid == NULL)
	{
		*error = pstrdup("the job names no order");
		return JOB_DONE;
	}
	twilio_request(HTTP_GET, twilio_url(TWILIO_NUMBERS, "/v2/HostedNumber/Orders/%s", order_sid), NULL,
				   TWILIO_NO_ERROR, "fetch the hosted order", &reply);
	if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404) ||
		(reply.http.status < 300 && reply.json == NULL))
	{
		*error = twilio_describe_failure(&reply);
		return JOB_RETRY;
	}

	if (reply.http.status != 404)
	{
		char	   *st = jb_text(&reply.json->root, "status");
		char	   *pn = jb_text(&reply.json->root, "incoming_phone_number_sid");
		char	   *acct = jb_text(&reply.json->root, "account_sid");

		order = JsonbPGetDatum(reply.json);
		/* a completed order: fetch the IncomingPhoneNumber it created, for the row */
		if (st && strcmp(st, "completed") == 0 && pn)
		{
			twilio_request(HTTP_GET, twilio_account_url_for(acct, "/IncomingPhoneNumbers/%s.json", pn), NULL,
						   TWILIO_NO_ERROR, "fetch the hosted number", &number);
			if (!number.http.complete || number.http.status >= 300 || number.json == NULL)
			{
				*error = twilio_describe_failure(&number);
				return JOB_RETRY;
			}
			fetched = JsonbPGetDatum(number.json);
		}
	}
	status = store_hosted_order_seen(order_sid, order, fetched);
	if (status == NULL || strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		strcmp(status, "canceled") == 0)
		return JOB_DONE;

	/* still on its way: poll again, later each time nothing changed */
	polls = store_hosted_order_polled(order_sid);
	*again_ms = Min((long) tn_hosted_poll_ms << Min(polls, 20), (long) tn_hosted_poll_max_ms);
	return JOB_AGAIN;
}

