/*
 * addresses.c — customers' Twilio Addresses (2010-04-01 Addresses): create,
 * change and delete them from SQL, in the Twilio (sub)account the customer's
 * numbers live in, and copy one into another subaccount for a transfer.
 *
 * Twilio validates an address as it creates or changes it (21628): that
 * refusal becomes TN003 with a hint; others are Twilio's usual errors.  An
 * address is deleted only when no live number of ours names it (Twilio's
 * rule, checked here before the request).  Addresses cost nothing at
 * Twilio and are not undone when the caller's transaction rolls back: an
 * address created in a rolled-back transaction stays at Twilio, unused.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "accounts.h"
#include "addresses.h"
#include "incarnation.h"
#include "errcodes.h"
#include "http.h"
#include "reply.h"
#include "settings.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"

/* A text argument that must be given and not empty. */
static char *
required_text(FunctionCallInfo fcinfo, int n, const char *name)
{
	char	   *v = validate_text_arg(fcinfo, n);

	if (v == NULL || v[strspn(v, " \t")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is required", name)));
	return v;
}

/* An optional text argument of at most max characters. */
static char *
bounded_text(FunctionCallInfo fcinfo, int n, const char *name, int max)
{
	char	   *v = validate_text_arg(fcinfo, n);

	if (v != NULL && strlen(v) > (size_t) max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at most %d characters long", name, max)));
	return v;
}

/* The Twilio account a customer's addresses live in. */
static const char *
home_of(const Account *acct)
{
	return acct->twilio_account_sid && acct->twilio_account_sid[0] ? acct->twilio_account_sid : tn_account_sid;
}

/*
 * POST an address form; Twilio's validation refusal (21628) as TN003 with
 * what to check, any other failure as Twilio's error.  Returns the jsonb.
 */
static Jsonb *
post_address(const char *url, const char *form, const char *what)
{
	TwilioReply reply;

	twilio_request(HTTP_POST, url, form, TWILIO_NO_ERROR, what, &reply);
	if (reply.http.complete && reply.twilio_code == 21628)
		ereport(ERROR,
				(errcode(ERRCODE_TN_REGULATORY_REQUIREMENT),
				 errmsg("Twilio could not validate the address"),
				 errdetail("Twilio error %d: %s (HTTP %ld).", reply.twilio_code,
						   reply.twilio_message ? reply.twilio_message : "(no message)", reply.http.status),
				 errhint("Check the street (with its house number), city, region and postal code against the "
						 "country's format."),
				 errcontext("Twilio request: %s", what)));
	if (!reply.http.complete || reply.http.status >= 300)
		twilio_raise(&reply, what);
	if (reply.json == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
				 errmsg("Twilio's reply has no address"),
				 errcontext("Twilio request: %s", what)));
	return reply.json;
}

/* The account's address row (locked), or P0002; *home is its Twilio account. */
static void
lock_address(int64 account_id, const char *address_sid, char **home)
{
	*home = store_address_lock(account_id, address_sid);
	if (*home == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("address %s is not an address of account " INT64_FORMAT, address_sid, account_id),
				 errhint("numbers_addresses(account_id) lists the account's addresses.")));
}

PG_FUNCTION_INFO_V1(tn_numbers_address_create);

/*
 * numbers_address_create(account_id, customer_name, street, city, region,
 *   postal_code, iso_country, friendly_name, emergency_enabled,
 *   street_secondary) -> addresses
 */
Datum
tn_numbers_address_create(PG_FUNCTION_ARGS)
{
	int64		account_id = validate_account_arg(fcinfo, 0);
	char	   *customer = required_text(fcinfo, 1, "customer_name");
	char	   *street = required_text(fcinfo, 2, "street");
	char	   *city = required_text(fcinfo, 3, "city");
	char	   *region = required_text(fcinfo, 4, "region");
	char	   *postal = required_text(fcinfo, 5, "postal_code");
	char	   *iso = validate_country("iso_country", validate_text_arg(fcinfo, 6));
	char	   *friendly = validate_text_arg(fcinfo, 7);
	bool		emergency = PG_ARGISNULL(8) ? false : PG_GETARG_BOOL(8);
	char	   *street2 = bounded_text(fcinfo, 9, "street_secondary", 255);
	Account		acct;
	StringInfoData form;
	Jsonb	   *r;
	Datum		result;

	validate_friendly_name(friendly);
	bounded_text(fcinfo, 1, "customer_name", 255);
	bounded_text(fcinfo, 2, "street", 255);
	bounded_text(fcinfo, 5, "postal_code", 32);
	incarnation_require_writes();
	twilio_require_credentials();

	SPI_connect();
	accounts_load(account_id, &acct);
	if (strcmp(acct.status, "closed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("account " INT64_FORMAT " is closed", account_id)));

	initStringInfo(&form);
	twilio_form_add(&form, "CustomerName", customer);
	twilio_form_add(&form, "Street", street);
	twilio_form_add(&form, "StreetSecondary", street2);
	twilio_form_add(&form, "City", city);
	twilio_form_add(&form, "Region", region);
	twilio_form_add(&form, "PostalCode", postal);
	twilio_form_add(&form, "IsoCountry", iso);
	twilio_form_add(&form, "FriendlyName", friendly);
	twilio_form_add(&form, "EmergencyEnabled", emergency ? "true" : "false");
	r = post_address(twilio_account_url_for(home_of(&acct), "/Addresses.json"), form.data,
					 psprintf("create an address for account " INT64_FORMAT, account_id));
	result = store_address_seen(account_id, r, NULL);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_address_update);

/*
 * numbers_address_update(account_id, address_sid, customer_name, street,
 *   city, region, postal_code, friendly_name, emergency_enabled,
 *   street_secondary) -> addresses; NULL leaves a field alone.
 */
Datum
tn_numbers_address_update(PG_FUNCTION_ARGS)
{
	int64		account_id = validate_account_arg(fcinfo, 0);
	char	   *sid = validate_text_arg(fcinfo, 1);
	static const char *const keys[] = {"CustomerName", "Street", "City", "Region", "PostalCode", "FriendlyName"};
	static const char *const names[] = {"customer_name", "street", "city", "region", "postal_code", "friendly_name"};
	StringInfoData form;
	char	   *home;
	Jsonb	   *r;
	Datum		result;

	if (sid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("address_sid is required")));
	validate_sid("address_sid", sid, "AD");
	initStringInfo(&form);
	for (int i = 0; i < lengthof(keys); i++)
	{
		char	   *v = bounded_text(fcinfo, 2 + i, names[i], i == 4 ? 32 : 255);

		if (v != NULL && v[0] == '\0' && i < 5)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s cannot be empty", names[i])));
		if (i == 5)
			validate_friendly_name(v);
		twilio_form_add(&form, keys[i], v);
	}
	if (!PG_ARGISNULL(8))
		twilio_form_add(&form, "EmergencyEnabled", PG_GETARG_BOOL(8) ? "true" : "false");
	twilio_form_add(&form, "StreetSecondary", bounded_text(fcinfo, 9, "street_secondary", 255));
	incarnation_require_writes();
	twilio_require_credentials();

	SPI_connect();
	lock_address(account_id, sid, &home);
	r = post_address(twilio_account_url_for(home, "/Addresses/%s.json", sid), form.data,
					 psprintf("update address %s", sid));
	result = store_address_seen(account_id, r, NULL);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_address_delete);

/* numbers_address_delete(account_id, address_sid) -> the deleted addresses row */
Datum
tn_numbers_address_delete(PG_FUNCTION_ARGS)
{
	int64		account_id = PG_GETARG_INT64(0);
	char	   *sid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *home;
	char	   *deps;
	int			ndeps;
	TwilioReply reply;
	Datum		result;
	bool		found;

	validate_sid("address_sid", sid, "AD");
	incarnation_require_writes();
	twilio_require_credentials();

	SPI_connect();
	lock_address(account_id, sid, &home);
	deps = store_address_dependents(sid, &ndeps);
	if (ndeps > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("address %s is in use", sid),
				 errdetail_plural("Number %s depends on it, and Twilio does not delete an address numbers "
								  "depend on. Nothing was sent to Twilio.",
								  "Numbers %s depend on it, and Twilio does not delete an address numbers "
								  "depend on. Nothing was sent to Twilio.", ndeps, deps),
				 errhint("Release the numbers, or give them another address with numbers_update(address_sid => ...), first.")));

	twilio_request(HTTP_DELETE, twilio_account_url_for(home, "/Addresses/%s.json", sid), NULL,
				   TWILIO_NO_ERROR, psprintf("delete address %s", sid), &reply);
	if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
		twilio_raise(&reply, psprintf("delete address %s", sid));

	result = store_address_forget(sid, &found);
	if (!found)
		elog(ERROR, "could not delete the address");
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_addresses_refresh);

/*
 * numbers_addresses_refresh(account_id) -> SETOF addresses: Twilio's view of
 * each of the account's addresses read again (its validated and verified
 * flags change after creation); one Twilio no longer has is removed from
 * the table, with a NOTICE.
 */
Datum
tn_numbers_addresses_refresh(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		account_id = PG_GETARG_INT64(0);
	int			n;
	char	  **sids;
	char	  **homes;

	twilio_require_credentials();
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	n = store_addresses_lock(account_id, &sids, &homes);
	for (int i = 0; i < n; i++)
	{
		TwilioReply reply;
		Datum		row;
		HeapTupleData tuple;
		bool		found;

		twilio_request(HTTP_GET, twilio_account_url_for(homes[i], "/Addresses/%s.json", sids[i]), NULL,
					   HTTP_RETRY_SAFE | TWILIO_OK_404, psprintf("fetch address %s", sids[i]), &reply);
		if (reply.http.status == 404)
		{
			ereport(NOTICE,
					(errmsg("Twilio no longer has address %s; it is removed from the account's addresses",
							sids[i])));
			store_address_forget(sids[i], &found);
			continue;
		}
		if (reply.json == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
					 errmsg("Twilio's reply has no address"),
					 errcontext("Twilio request: fetch address %s", sids[i])));
		/* the row as recorded */
		row = store_address_seen(account_id, reply.json, NULL);
		tuple.t_len = HeapTupleHeaderGetDatumLength(DatumGetHeapTupleHeader(row));
		tuple.t_data = DatumGetHeapTupleHeader(row);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuplestore_puttuple(rsinfo->setResult, &tuple);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * An address of to_id in to_sid with the same content as address_sid (which
 * lives in from_sid): one registered already, else a copy created at Twilio
 * and recorded.  For a transfer to another subaccount; runs inside SPI.
 */
char *
addresses_copy_to(const char *address_sid, int64 to_id, const char *from_sid, const char *to_sid)
{
	TwilioReply reply;
	JsonbContainer *a;
	StringInfoData form;
	static const char *const fields[][2] = {
		{"CustomerName", "customer_name"}, {"Street", "street"}, {"StreetSecondary", "street_secondary"},
		{"City", "city"}, {"Region", "region"}, {"PostalCode", "postal_code"}, {"IsoCountry", "iso_country"},
		{"FriendlyName", "friendly_name"}};
	Jsonb	   *r;
	bool		isnull;
	char	   *copy;

	/* a copy made before (a transfer back and forth) */
	copy = store_address_copy_of(address_sid, to_id, to_sid);
	if (copy != NULL)
		return copy;

	/* what the address says, from Twilio (it may not be registered here) */
	twilio_request(HTTP_GET, twilio_account_url_for(from_sid, "/Addresses/%s.json", address_sid), NULL,
				   HTTP_RETRY_SAFE, psprintf("fetch address %s", address_sid), &reply);
	a = &reply.json->root;
	initStringInfo(&form);
	for (int i = 0; i < lengthof(fields); i++)
		twilio_form_add(&form, fields[i][0], jb_text(a, fields[i][1]));
	twilio_form_add(&form, "EmergencyEnabled", jb_bool(a, "emergency_enabled", &isnull) && !isnull ? "true" : "false");
	r = post_address(twilio_account_url_for(to_sid, "/Addresses.json"), form.data,
					 psprintf("copy address %s to account %s", address_sid, to_sid));
	copy = jb_text(&r->root, "sid");
	store_address_seen(to_id, r, address_sid);
	return copy;
}
