/*
 * change.c — changing numbers in the caller's transaction: numbers_update,
 * numbers_trunk_assign / _unassign and numbers_transfer (Messaging Service
 * assignment, modelled on trunk assignment, is messaging.c's).
 *
 * Each locks the number's row, records an intent of its kind before
 * changing Twilio (if the caller rolls back, the worker puts Twilio back in
 * step with the committed row: change_kinds.c), sends the change, and writes
 * Twilio's answer into the row.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "accounts.h"
#include "addresses.h"
#include "bundles.h"
#include "config.h"
#include "http.h"
#include "intents.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"
#include "xact.h"

/* A live number of the account, locked (errors as _live_number says), with its SID. */
static void
lock_live_number(int64 account_id, const char *phone, LiveNumber *ln)
{
	store_live_number(account_id, phone, ln);
	if (ln->sid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phone number %s has no Twilio SID yet", phone)));
}

/* Record an intent of this kind for the transaction before changing Twilio. */
static void
track_change(int kind, const LiveNumber *ln, const char *other_account_sid)
{
	int			slot;

	xact_reserve(1);
	slot = intent_change(kind, ln->number_id, ln->phone);
	xact_track_intent(slot, false);
	if (other_account_sid)
		intent_set_sid(slot, ln->sid, other_account_sid);
}

/* Apply Twilio's resource to the row and return the row as the result. */
static Datum
apply_and_return(int64 number_id, const char *resource)
{
	SPITupleTable *tt;

	if (resource)
		store_apply_twilio(number_id, resource);
	tt = store_owned_number(number_id);
	return PointerGetDatum(SPI_returntuple(tt->vals[0], tt->tupdesc));
}

PG_FUNCTION_INFO_V1(tn_numbers_update);

/* numbers_update(account_id, phone_number, ...) -> owned_numbers */
Datum
tn_numbers_update(PG_FUNCTION_ARGS)
{
	int64		account_id;
	char	   *phone;
	NumberConfig cfg;
	LiveNumber	ln;
	StringInfoData form;
	char	   *resource = NULL;
	Datum		result;

	shmem_require_worker();
	account_id = validate_account_arg(fcinfo, 0);
	phone = validate_text_arg(fcinfo, 1);
	validate_e164("phone_number", phone);
	config_read(fcinfo, 2, &cfg);
	twilio_require_credentials();

	SPI_connect();
	lock_live_number(account_id, phone, &ln);
	initStringInfo(&form);
	config_form(&cfg, &form);
	if (form.len > 0)
	{
		TwilioReply reply;

		track_change(INTENT_UPDATE, &ln, NULL);
		twilio_request(HTTP_POST,
					   twilio_account_url_for(ln.account_sid, "/IncomingPhoneNumbers/%s.json", ln.sid),
					   form.data, 0, psprintf("update %s", phone), &reply);
		resource = twilio_json_text(&reply);
	}
	result = apply_and_return(ln.number_id, resource);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* Remove a number from a trunk at Twilio; 404 means it already is not there. */
static void
trunk_remove(const char *trunk_sid, const char *number_sid, const char *phone)
{
	TwilioReply reply;

	twilio_request(HTTP_DELETE,
				   twilio_url(TWILIO_TRUNKING, "/v1/Trunks/%s/PhoneNumbers/%s", trunk_sid, number_sid),
				   NULL, TWILIO_OK_404 | HTTP_RETRY_SAFE,
				   psprintf("remove %s from trunk %s", phone, trunk_sid), &reply);
}

PG_FUNCTION_INFO_V1(tn_numbers_trunk_assign);

/* numbers_trunk_assign(account_id, phone_number, trunk_sid) -> owned_numbers */
Datum
tn_numbers_trunk_assign(PG_FUNCTION_ARGS)
{
	int64		account_id = PG_GETARG_INT64(0);
	char	   *phone = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *trunk = text_to_cstring(PG_GETARG_TEXT_PP(2));
	LiveNumber	ln;
	Datum		result;

	shmem_require_worker();
	validate_e164("phone_number", phone);
	if (trunk[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trunk_sid is required"),
				 errhint("numbers_trunk_unassign() removes a number from its trunk.")));
	validate_sid("trunk_sid", trunk, "TK");
	twilio_require_credentials();

	SPI_connect();
	lock_live_number(account_id, phone, &ln);
	if (ln.trunk_sid == NULL || strcmp(ln.trunk_sid, trunk) != 0)
	{
		StringInfoData form;
		TwilioReply reply;

		track_change(INTENT_TRUNK, &ln, NULL);
		/* a number is on one trunk at a time: move it */
		if (ln.trunk_sid)
			trunk_remove(ln.trunk_sid, ln.sid, phone);
		initStringInfo(&form);
		twilio_form_add(&form, "PhoneNumberSid", ln.sid);
		twilio_request(HTTP_POST, twilio_url(TWILIO_TRUNKING, "/v1/Trunks/%s/PhoneNumbers", trunk),
					   form.data, 0, psprintf("assign %s to trunk %s", phone, trunk), &reply);
		store_set_trunk(ln.number_id, trunk);
	}
	result = apply_and_return(ln.number_id, NULL);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_trunk_unassign);

/* numbers_trunk_unassign(account_id, phone_number) -> owned_numbers */
Datum
tn_numbers_trunk_unassign(PG_FUNCTION_ARGS)
{
	int64		account_id = PG_GETARG_INT64(0);
	char	   *phone = text_to_cstring(PG_GETARG_TEXT_PP(1));
	LiveNumber	ln;
	Datum		result;

	shmem_require_worker();
	validate_e164("phone_number", phone);
	twilio_require_credentials();

	SPI_connect();
	lock_live_number(account_id, phone, &ln);
	if (ln.trunk_sid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phone number %s is not assigned to a trunk", phone)));
	track_change(INTENT_TRUNK, &ln, NULL);
	trunk_remove(ln.trunk_sid, ln.sid, phone);
	store_set_trunk(ln.number_id, NULL);
	result = apply_and_return(ln.number_id, NULL);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * The address and bundle a number moving to another Twilio account needs
 * there: copies of its own (addresses.c, bundles.c), NULL where it has none.
 */
static void
regulated_for_transfer(const TransferNeeds *needs, int64 to_id, const char *from_sid, const char *to_sid,
					   char **address_sid, char **bundle_sid)
{
	if (needs->bundle_sid)
		*bundle_sid = bundles_clone_to(needs->bundle_sid, to_id, to_sid, needs->iso_country, needs->number_type);
	if (needs->address_sid)
		*address_sid = addresses_copy_to(needs->address_sid, to_id, from_sid, to_sid);
}

PG_FUNCTION_INFO_V1(tn_numbers_transfer);

/*
 * numbers_transfer(phone_number, from_account_id, to_account_id): the number
 * changes hands, ledger-neutral (the period already paid stays paid; the new
 * account is billed from the next period).  When the accounts map to
 * different Twilio (sub)accounts, Twilio moves it too (AccountSid update).
 */
Datum
tn_numbers_transfer(PG_FUNCTION_ARGS)
{
	char	   *phone = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		from_id = PG_GETARG_INT64(1);
	int64		to_id = PG_GETARG_INT64(2);
	LiveNumber	ln;
	Account		to;
	const char *from_sid;
	const char *to_sid;
	char	   *resource = NULL;
	Datum		result;

	shmem_require_worker();
	validate_e164("phone_number", phone);
	if (from_id == to_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_account_id and to_account_id are the same account")));
	twilio_require_credentials();

	SPI_connect();
	lock_live_number(from_id, phone, &ln);
	accounts_load_active(to_id, &to, "numbers can only move to active accounts");
	if (strcmp(to.currency, ln.currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phone number %s is billed in %s, but account " INT64_FORMAT " pays in %s",
						phone, ln.currency, to_id, to.currency)));

	from_sid = ln.account_sid && ln.account_sid[0] ? ln.account_sid : tn_account_sid;
	to_sid = accounts_twilio_sid(&to);
	if (strcmp(from_sid, to_sid) != 0)
	{
		StringInfoData form;
		TwilioReply reply;
		TransferNeeds needs;
		char	   *address_sid = NULL;
		char	   *bundle_sid = NULL;

		/*
		 * a Messaging Service stays in its account: the number must leave it
		 * first (read with a snapshot taken after the row lock: an assignment
		 * that committed while this transfer waited for the lock is seen)
		 */
		store_transfer_needs(ln.number_id, &needs);
		if (needs.messaging_service_sid)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("phone number %s is in Messaging Service %s", phone, needs.messaging_service_sid),
					 errdetail("The service belongs to Twilio account %s and would stay behind when the number "
							   "moves to %s; nothing was sent to Twilio.", from_sid, to_sid),
					 errhint("Take it out with numbers_messaging_unassign() first.")));

		/*
		 * a regulated number needs its address and bundle in the new account:
		 * copied and cloned there first (a refusal stops here, before the
		 * number moves)
		 */
		regulated_for_transfer(&needs, to_id, from_sid, to_sid, &address_sid, &bundle_sid);

		/* if we roll back, the worker moves it back from to_sid */
		track_change(INTENT_TRANSFER, &ln, to_sid);
		initStringInfo(&form);
		twilio_form_add(&form, "AccountSid", to_sid);
		twilio_form_add(&form, "AddressSid", address_sid);
		twilio_form_add(&form, "BundleSid", bundle_sid);
		twilio_request(HTTP_POST,
					   twilio_account_url_for(from_sid, "/IncomingPhoneNumbers/%s.json", ln.sid),
					   form.data, 0, psprintf("move %s to account %s", phone, to_sid), &reply);
		resource = twilio_json_text(&reply);
	}

	store_transfer_record(ln.number_id, to_id);
	result = apply_and_return(ln.number_id, resource);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
