/*
 * adopt.c — numbers_adopt: bring a number that is already at Twilio, in a
 * managed account, under a customer account without buying it.
 *
 * This is how a reseller moves an existing business onto the extension:
 * reconcile reports the numbers it did not buy (unmanaged_numbers), and a
 * DBA adopts each one for its customer.  Nothing is sent to Twilio but the
 * look-up: the row mirrors Twilio's resource (SID, configuration,
 * capabilities, trunk), origin 'adopted', no setup fee; billing starts
 * today, the first period charged as at a purchase unless the caller says
 * it is already paid.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "accounts.h"
#include "create.h"
#include "errcodes.h"
#include "intents.h"
#include "pricing.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"

PG_FUNCTION_INFO_V1(tn_numbers_adopt);

/*
 * numbers_adopt(account_id, phone_number, number_type, monthly_price,
 *               first_period_paid) -> owned_numbers
 */
Datum
tn_numbers_adopt(PG_FUNCTION_ARGS)
{
	int64		account_id = validate_account_arg(fcinfo, 0);
	char	   *phone = validate_text_arg(fcinfo, 1);
	char	   *type_arg = validate_text_arg(fcinfo, 2);
	bool		paid = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	const char *type;
	const char *iso;
	Account		acct;
	const char *twilio_account;
	TwilioReply reply;
	bool		ok;
	List	   *found;
	Datum		monthly;
	char	   *currency;
	SPITupleTable *tt;
	Datum		result;

	shmem_require_worker();
	validate_e164("phone_number", phone);
	iso = validate_country_of(phone);
	if (type_arg)
		type = validate_number_type(type_arg);
	else if ((type = validate_nanp_type(phone)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number_type is required to adopt %s", phone),
				 errdetail("Only a North American number's type is known from the number itself."),
				 errhint("Pass number_type => 'local', 'mobile', 'toll_free', ...")));
	twilio_require_credentials();

	SPI_connect();
	if (!PG_ARGISNULL(3))
		store_check_money("monthly_price", PG_GETARG_DATUM(3), false);
	accounts_load_active(account_id, &acct, "only active accounts can adopt numbers");
	create_require_free(&phone, 1, false);
	if (intent_buying(phone))
		ereport(ERROR,
				(errcode(ERRCODE_TN_NUMBER_NOT_AVAILABLE),
				 errmsg("phone number %s is being bought by another transaction", phone)));

	/* the number as Twilio holds it, in the customer's Twilio account */
	twilio_account = accounts_twilio_sid(&acct);
	found = twilio_owned_by_phone(twilio_account, phone, &reply, &ok);
	if (!ok)
		twilio_raise(&reply, psprintf("look %s up at Twilio", phone));
	if (found == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("Twilio account %s holds no number %s", twilio_account, phone),
				 errdetail("Account " INT64_FORMAT "'s numbers live in that Twilio account.", account_id),
				 errhint("twilio_numbers.unmanaged_numbers lists the numbers that can be adopted, and by whom.")));

	/* its price: the caller's, or the customer price of its type */
	if (!PG_ARGISNULL(3))
	{
		monthly = PG_GETARG_DATUM(3);
		currency = acct.currency;
	}
	else
	{
		CustomerPrice price;

		pricing_customer_price(iso, type, &price);
		if (!price.found)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no price for %s %s numbers", iso, type),
					 errhint("Add a row to twilio_numbers.price_list, or pass monthly_price.")));
		if (price.currency == NULL || strcmp(price.currency, acct.currency) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s %s numbers are priced in %s, but account " INT64_FORMAT " pays in %s",
							iso, type, price.currency ? price.currency : "(none)", account_id, acct.currency),
					 errhint("Pass monthly_price, or add a twilio_numbers.price_list row in %s.", acct.currency)));
		monthly = price.monthly_price;
		currency = price.currency;
	}

	tt = store_adopt_record(account_id, JsonbToCString(NULL, (JsonbContainer *) linitial(found), 0), type, iso,
							monthly, currency, paid);
	result = PointerGetDatum(SPI_returntuple(tt->vals[0], tt->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}
