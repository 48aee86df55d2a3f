/*
 * accounts.c — customer accounts as the C functions read them, and which
 * Twilio account each one's numbers live in.
 *
 * The Twilio account is shared with the world, and reconcile acts on every
 * Twilio account this database manages; so which ones it manages is the
 * DBA's decision alone.  numbers_map_account (DBA only) is the one way to
 * set accounts.twilio_account_sid: it checks with Twilio that the SID is
 * the main account or one of its subaccounts, and a trigger refuses any
 * other change of the column.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "accounts.h"
#include "http.h"
#include "reply.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"

/* set while numbers_map_account changes the column (the trigger asks) */
static bool mapping_in_progress = false;

/* The account, or P0002 (SPI connected). */
void
accounts_load(int64 account_id, Account *acct)
{
	if (!store_account(account_id, &acct->currency, &acct->status, &acct->twilio_account_sid))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("account " INT64_FORMAT " does not exist", account_id)));
	acct->account_id = account_id;
}

/*
 * The account, which must be active: otherwise "account N is closed; " and
 * only_active ("only active accounts can buy numbers") say why not.
 */
void
accounts_load_active(int64 account_id, Account *acct, const char *only_active)
{
	accounts_load(account_id, acct);
	if (strcmp(acct->status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("account " INT64_FORMAT " is %s; %s", account_id, acct->status, only_active)));
}

/* The Twilio account the customer's numbers live in: its own, or the main one. */
const char *
accounts_twilio_sid(const Account *acct)
{
	return acct->twilio_account_sid && acct->twilio_account_sid[0] ? acct->twilio_account_sid : tn_account_sid;
}

/* GET a Twilio account with the main account's credentials. */
static void
fetch_twilio_account(const char *sid, TwilioReply *reply)
{
	twilio_request(HTTP_GET, twilio_url(TWILIO_API, "/2010-04-01/Accounts/%s.json", sid), NULL,
				   TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "look the Twilio account up", reply);
}

/*
 * Refuse a SID that is not the main account or one of its subaccounts, as
 * Twilio sees it; a failure of Twilio itself raises its own error.
 */
static void
check_subaccount(const char *sid)
{
	TwilioReply reply;
	char	   *owner;
	char	   *status;

	fetch_twilio_account(sid, &reply);
	if (!reply.http.complete || reply.http.status >= 500 || reply.http.status == 429)
		twilio_raise(&reply, "look the Twilio account up");
	if (reply.http.status == 401 || reply.http.status == 403 || reply.http.status == 404)
	{
		TwilioReply main;

		/* is it our credentials that Twilio refuses, or that account? */
		fetch_twilio_account(tn_account_sid, &main);
		if (!main.http.complete || main.http.status >= 300)
			twilio_raise(&main, "look the main Twilio account up");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("twilio_account_sid %s is not this Twilio account or one of its subaccounts", sid),
				 errdetail("Twilio answered HTTP %ld (error %d) when asked for it with the main account's credentials.",
						   reply.http.status, reply.twilio_code),
				 errhint("Create the subaccount at Twilio first (POST /2010-04-01/Accounts.json), then map it.")));
	}
	if (reply.http.status >= 300 || reply.json == NULL)
		twilio_raise(&reply, "look the Twilio account up");
	owner = jb_text(&reply.json->root, "owner_account_sid");
	status = jb_text(&reply.json->root, "status");
	if (owner == NULL || strcmp(owner, tn_account_sid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("twilio_account_sid %s is not this Twilio account or one of its subaccounts", sid),
				 errdetail("Twilio says it belongs to %s.", owner ? owner : "no owner")));
	if (status == NULL || strcmp(status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Twilio subaccount %s is %s", sid, status ? status : "in an unknown state"),
				 errhint("Only an active subaccount can hold numbers.")));
}

PG_FUNCTION_INFO_V1(tn_numbers_map_account);

/*
 * numbers_map_account(account_id, twilio_account_sid) -> accounts: the
 * Twilio (sub)account new numbers of the customer are bought in (NULL: the
 * main account).  Numbers it already has stay where they are at Twilio
 * (numbers_transfer moves one).
 */
Datum
tn_numbers_map_account(PG_FUNCTION_ARGS)
{
	int64		account_id = validate_account_arg(fcinfo, 0);
	char	   *sid = validate_text_arg(fcinfo, 1);
	Account		acct;
	SPITupleTable *volatile tt = NULL;
	Datum		result;

	shmem_require_worker();
	if (sid && sid[0] == '\0')
		sid = NULL;
	validate_sid("twilio_account_sid", sid, "AC");
	twilio_require_credentials();
	if (sid && strcmp(sid, tn_account_sid) == 0)
		sid = NULL;				/* the main account is written NULL */

	SPI_connect();
	accounts_load(account_id, &acct);
	if (sid)
		check_subaccount(sid);

	mapping_in_progress = true;
	PG_TRY();
	{
		tt = store_account_map(account_id, sid);
	}
	PG_FINALLY();
	{
		mapping_in_progress = false;
	}
	PG_END_TRY();
	result = PointerGetDatum(SPI_returntuple(tt->vals[0], tt->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_mapping_allowed_sql);

/* _mapping_allowed(): is numbers_map_account changing the mapping now? */
Datum
tn_mapping_allowed_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(mapping_in_progress);
}
