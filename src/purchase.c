/*
 * purchase.c — numbers_purchase: buying numbers inside the caller's
 * transaction.
 *
 * The design (docs/design.md "The life of a purchase"): validate and price before any
 * request; hold the funds in shared memory instead of locking the account
 * row across HTTP; record an intent before each change at Twilio so the
 * worker can undo it if the transaction rolls back; never resend a purchase
 * POST blindly — after a lost reply, look the number up first; write the
 * rows and the ledger entries last, where the account row is locked until
 * the caller commits.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "compat.h"
#include "accounts.h"
#include "bundles.h"
#include "change_kinds.h"
#include "config.h"
#include "create.h"
#include "errcodes.h"
#include "http.h"
#include "intents.h"
#include "pricing.h"
#include "reply.h"
#include "seen_numbers.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "twilio.h"
#include "validate.h"

/* What we learn about a number before buying it. */
typedef struct NumberToBuy
{
	char	   *phone;
	const char *iso;
	const char *type;
	char	   *address_requirements;
	char	   *locality;
	char	   *region;
	CustomerPrice price;
	int64		hold_cents;
	int			slot;
	char	   *resource;		/* Twilio's IncomingPhoneNumber, JSON text */
	TwilioReply *prefetched;	/* the look-up of its first candidate type, sent with the others' */
	bool		resolved;		/* known from this session's search (seen_numbers.c) */
} NumberToBuy;

/*
 * The types a number may be, known without asking Twilio: North American
 * numbers by their prefix, others any type the country sells.
 */
static int
candidate_types(const char *phone, const char **types)
{
	int			n = 0;

	if (validate_nanp_type(phone))
		types[n++] = validate_nanp_type(phone);
	else
	{
		types[n++] = "local";
		types[n++] = "mobile";
		types[n++] = "toll_free";
		types[n++] = "national";
	}
	return n;
}

/* The inventory look-up of a number as one type. */
static char *
resolve_url(const char *phone, const char *iso, const char *type)
{
	StringInfoData url;

	initStringInfo(&url);
	appendStringInfoString(&url, twilio_account_url_for(NULL, "/AvailablePhoneNumbers/%s/%s.json",
														  iso, validate_type_path(type)));
	twilio_query_add(&url, "Contains", phone);
	twilio_query_add(&url, "PageSize", "20");
	return url.data;
}

/*
 * The first look-up of several numbers at once (each number's first
 * candidate type); resolve_number takes a definite answer (2xx or 404) from
 * there and asks again, with the usual retries, for anything else.
 */
static void
prefetch_numbers(NumberToBuy *nbs, int n)
{
	HttpParallel *reqs = palloc0(sizeof(HttpParallel) * n);
	TwilioReply *replies = palloc0(sizeof(TwilioReply) * n);
	int		   *which = palloc(sizeof(int) * n);
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		const char *candidates[4];

		if (nbs[i].resolved)
			continue;
		(void) candidate_types(nbs[i].phone, candidates);
		reqs[m].method = HTTP_GET;
		reqs[m].url = resolve_url(nbs[i].phone, validate_country_of(nbs[i].phone), candidates[0]);
		which[m++] = i;
	}
	if (m == 0)
		return;
	twilio_requests_parallel(reqs, m, replies);
	for (int j = 0; j < m; j++)
		if (replies[j].http.complete &&
			((replies[j].http.status < 300 && replies[j].json != NULL) || replies[j].http.status == 404))
			nbs[which[j]].prefetched = &replies[j];
}

/*
 * What this session's search saw of the number a moment ago, if anything
 * (seen_numbers.c): taken as resolved when it is of the number's country and
 * a type the number can have.  The entry is taken out either way.
 */
static void
take_seen(NumberToBuy *nb)
{
	SeenNumber	s;
	const char *candidates[4];
	int			ncand = candidate_types(nb->phone, candidates);

	if (!seen_numbers_take(nb->phone, &s) || strcmp(s.iso, validate_country_of(nb->phone)) != 0)
		return;
	for (int c = 0; c < ncand; c++)
		if (strcmp(s.type, candidates[c]) == 0)
		{
			nb->iso = validate_country_of(nb->phone);
			nb->type = candidates[c];
			nb->address_requirements = (char *) s.address_requirements;
			nb->locality = (char *) s.locality;
			nb->region = (char *) s.region;
			nb->resolved = true;
			return;
		}
}

/*
 * Find the number in Twilio's available inventory: its type, address
 * requirement and place.  One GET per candidate type, usually one (or the
 * prefetched reply; nothing when the session's search already said).
 */
static void
resolve_number(NumberToBuy *nb)
{
	const char *candidates[4];
	int			ncand = candidate_types(nb->phone, candidates);

	if (nb->resolved)
		return;
	nb->iso = validate_country_of(nb->phone);
	for (int c = 0; c < ncand; c++)
	{
		TwilioReply reply;
		JsonbContainer *list;
		int			n;

		if (c == 0 && nb->prefetched)
			reply = *nb->prefetched;
		else
			twilio_request(HTTP_GET, resolve_url(nb->phone, nb->iso, candidates[c]), NULL, TWILIO_OK_404,
						   "look the number up in Twilio's inventory", &reply);
		if (reply.http.status == 404 || reply.json == NULL)
			continue;
		list = jb_array(&reply.json->root, "available_phone_numbers");
		n = jb_array_size(list);
		for (int i = 0; i < n; i++)
		{
			JsonbContainer *e = jb_array_object(list, i);
			char	   *p = e ? jb_text(e, "phone_number") : NULL;

			if (p && strcmp(p, nb->phone) == 0)
			{
				nb->type = candidates[c];
				nb->address_requirements = jb_text(e, "address_requirements");
				nb->locality = jb_text(e, "locality");
				nb->region = jb_text(e, "region");
				return;
			}
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_TN_NUMBER_NOT_AVAILABLE),
			 errmsg("phone number %s is not available", nb->phone),
			 errdetail("Twilio's available %s numbers do not include it.", nb->iso),
			 errhint("Someone else may have bought it; search again with numbers_search().")));
}

/* ---- money ---------------------------------------------------------------- */

static int64
to_cents(Datum amount)
{
	Datum		cents = DirectFunctionCall2(numeric_mul, amount,
											DirectFunctionCall1(int4_numeric, Int32GetDatum(100)));

	return DatumGetInt64(DirectFunctionCall1(numeric_int8, cents));
}

static char *
cents_text(int64 cents)
{
	return psprintf("%s" INT64_FORMAT ".%02d", cents < 0 ? "-" : "",
					(cents < 0 ? -cents : cents) / 100, (int) ((cents < 0 ? -cents : cents) % 100));
}

/*
 * Check the funds for a purchase of total_cents against the committed
 * balance, read with a fresh snapshot (never the caller's old one), minus
 * what other purchases in flight hold.  Raises TN001 before any request.
 */
static void
check_funds(const Account *acct, int64 others_cents, int64 total_cents)
{
	Datum		balance_d;
	Datum		limit_d;
	int64		balance;
	int64		limit;

	store_account_funds(acct->account_id, &balance_d, &limit_d);
	balance = to_cents(balance_d);
	limit = to_cents(limit_d);

	if (balance - others_cents - total_cents < -limit)
		ereport(ERROR,
				(errcode(ERRCODE_TN_INSUFFICIENT_FUNDS),
				 errmsg("insufficient funds in account " INT64_FORMAT, acct->account_id),
				 others_cents ?
				 errdetail("The purchase costs %s %s; the balance is %s, the credit limit %s, and purchases "
						   "in flight hold %s. Nothing was sent to Twilio.",
						   cents_text(total_cents), acct->currency, cents_text(balance), cents_text(limit),
						   cents_text(others_cents)) :
				 errdetail("The purchase costs %s %s; the balance is %s, the credit limit %s. "
						   "Nothing was sent to Twilio.",
						   cents_text(total_cents), acct->currency, cents_text(balance), cents_text(limit)),
				 errhint("Deposit with numbers_deposit(), or raise the account's credit_limit.")));
}

/*
 * The cheapest price each number can have (its country and possible types
 * are known without asking Twilio): what is held while it is resolved.
 * Returns the total.
 */
static int64
cheapest_holds(char **phones, int n, int64 *holds)
{
	int64		total = 0;

	for (int i = 0; i < n; i++)
	{
		const char *types[4];
		int			ntypes = candidate_types(phones[i], types);
		const char *iso = validate_country_of(phones[i]);
		int64		cheapest = -1;

		for (int t = 0; t < ntypes; t++)
		{
			CustomerPrice p;

			pricing_customer_price(iso, types[t], &p);
			if (p.found)
			{
				int64		c = to_cents(p.setup_price) + to_cents(p.monthly_price);

				cheapest = cheapest < 0 ? c : Min(cheapest, c);
			}
		}
		holds[i] = Max(cheapest, 0);
		total += holds[i];
	}
	return total;
}

/*
 * A resolved number's regulatory needs and exact price, checked before any
 * POST; returns the price in cents (set-up and first period).
 */
static int64
check_and_price(NumberToBuy *nb, const Account *acct, const NumberConfig *cfg)
{
	if (nb->address_requirements && strcmp(nb->address_requirements, "none") != 0 &&
		cfg->address_sid == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TN_REGULATORY_REQUIREMENT),
				 errmsg("phone number %s requires an address", nb->phone),
				 errdetail("Twilio lists its address_requirements as \"%s\". Nothing was sent to Twilio.",
						   nb->address_requirements),
				 strcmp(nb->address_requirements, "local") == 0 ?
				 errhint("Pass address_sid => 'AD...', an Address registered with Twilio in the number's country.") :
				 strcmp(nb->address_requirements, "foreign") == 0 ?
				 errhint("Pass address_sid => 'AD...', an Address registered with Twilio outside the number's country.") :
				 errhint("Pass address_sid => 'AD...', an Address registered with Twilio.")));
	pricing_customer_price(nb->iso, nb->type, &nb->price);
	if (!nb->price.found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no price for %s %s numbers", nb->iso, nb->type),
				 errhint("Add a row to twilio_numbers.price_list.")));
	if (nb->price.currency == NULL || strcmp(nb->price.currency, acct->currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s %s numbers are priced in %s, but account " INT64_FORMAT " pays in %s",
						nb->iso, nb->type, nb->price.currency ? nb->price.currency : "(none)",
						acct->account_id, acct->currency),
				 errhint("Add a twilio_numbers.price_list row in %s for them.", acct->currency)));
	nb->hold_cents = to_cents(nb->price.setup_price) + to_cents(nb->price.monthly_price);
	return nb->hold_cents;
}

/*
 * A number whose country and type need a bundle, bought without one, takes
 * the customer's approved bundle (bundles.c), or nothing is sent; one
 * purchase sends one configuration, so its numbers must agree.
 */
static void
pick_bundle(const NumberToBuy *nbs, int n, const Account *acct, NumberConfig *cfg)
{
	for (int i = 0; i < n; i++)
	{
		char	   *b = bundles_pick(acct->account_id, accounts_twilio_sid(acct), nbs[i].phone, nbs[i].iso,
									 nbs[i].type);

		if (b == NULL)
			continue;
		if (cfg->bundle_sid != NULL && strcmp(cfg->bundle_sid, b) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the numbers of one purchase need different regulatory bundles"),
					 errdetail("%s needs bundle %s, another number bundle %s. Nothing was sent to Twilio.",
							   nbs[i].phone, b, cfg->bundle_sid),
					 errhint("Buy numbers of different countries or types in separate calls.")));
		cfg->bundle_sid = b;
	}
}

/*
 * What buying one number at Twilio is (create.c's protocol: a refusal
 * raises at once; a lost reply is looked up, and the POST is only sent
 * again when the look-up proves the first one did not buy it).
 */
static void
purchase_creation(const NumberToBuy *nb, const Account *acct, const NumberConfig *cfg, Creation *c)
{
	StringInfoData form;

	initStringInfo(&form);
	twilio_form_add(&form, "PhoneNumber", nb->phone);
	config_form(cfg, &form);

	memset(c, 0, sizeof(*c));
	c->kind = change_kind(INTENT_PURCHASE);
	c->slot = nb->slot;
	c->url = twilio_account_url_for(acct->twilio_account_sid, "/IncomingPhoneNumbers.json");
	c->form = form.data;
	c->what = psprintf("buy %s", nb->phone);
	c->phone = nb->phone;
	c->twilio_account_sid = accounts_twilio_sid(acct);
	c->post_again = true;
}

/* ---- numbers_purchase ---------------------------------------------------- */

/* Append "key": value to a JSON object being built (value NULL -> null). */
static void
json_field(StringInfo buf, const char *key, const char *value, bool raw)
{
	if (buf->data[buf->len - 1] != '{')
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else if (raw)
		appendStringInfoString(buf, value);
	else
		escape_json(buf, value);
}

/*
 * The rows and the ledger entries of what Twilio sold (the account row is
 * locked here until the caller commits); returns the new rows.
 */
static SPITupleTable *
record_purchase(int64 account_id, const NumberToBuy *nbs, int n)
{
	StringInfoData rows;

	initStringInfo(&rows);
	appendStringInfoChar(&rows, '[');
	for (int i = 0; i < n; i++)
	{
		const NumberToBuy *nb = &nbs[i];

		if (i > 0)
			appendStringInfoChar(&rows, ',');
		appendStringInfoChar(&rows, '{');
		json_field(&rows, "phone_number", nb->phone, false);
		json_field(&rows, "number_type", nb->type, false);
		json_field(&rows, "iso_country", nb->iso, false);
		json_field(&rows, "locality", nb->locality, false);
		json_field(&rows, "region", nb->region, false);
		json_field(&rows, "setup_price",
				   DatumGetCString(DirectFunctionCall1(numeric_out, nb->price.setup_price)), true);
		json_field(&rows, "monthly_price",
				   DatumGetCString(DirectFunctionCall1(numeric_out, nb->price.monthly_price)), true);
		json_field(&rows, "currency", nb->price.currency, false);
		json_field(&rows, "twilio", nb->resource, true);
		appendStringInfoChar(&rows, '}');
	}
	appendStringInfoChar(&rows, ']');

	return store_purchase_record(account_id, rows.data);
}

/* What record_bought writes, and the rows it wrote. */
typedef struct Bought
{
	int64		account_id;
	NumberToBuy *nbs;
	int			n;
	SPITupleTable *rows;
} Bought;

/* create_all's record step: the resources Twilio created become the rows. */
static void
record_bought(char **resources, void *arg)
{
	Bought	   *b = arg;

	for (int i = 0; i < b->n; i++)
		b->nbs[i].resource = resources[i];
	b->rows = record_purchase(b->account_id, b->nbs, b->n);
}

/*
 * Buy n numbers for an account, all or nothing.  Returns the SPI tuple
 * table of the new owned_numbers rows (inside the caller's SPI connection).
 */
static SPITupleTable *
purchase(int64 account_id, char **phones, int n, const NumberConfig *given)
{
	NumberConfig cfg = *given;
	Account		acct;
	NumberToBuy *nbs = palloc0(sizeof(NumberToBuy) * n);
	Creation   *creations = palloc(sizeof(Creation) * n);
	char	  **resources = palloc(sizeof(char *) * n);
	int		   *slots = palloc(sizeof(int) * n);
	int64	   *holds = palloc(sizeof(int64) * n);
	int64		total;
	int64		exact_total = 0;
	int64		others;
	Bought		bought = {account_id, nbs, n, NULL};

	/* 1. the account and the numbers: nothing is sent before these pass */
	accounts_load_active(account_id, &acct, "only active accounts can buy numbers");
	create_require_free(phones, n, false);

	/*
	 * 2. hold the funds (in shared memory, no row lock) for the cheapest price
	 * each number can have and check them, so that an account without the
	 * money causes no request at all, concurrent buyers included
	 */
	total = cheapest_holds(phones, n, holds);
	others = create_reserve(INTENT_PURCHASE, account_id, n, phones, holds, slots);
	check_funds(&acct, others, total);

	/*
	 * 3. resolve and price each number; regulatory needs known up front.  A
	 * number this session's search saw a moment ago is resolved by what the
	 * search saw (no look-up: it is as much a snapshot as a look-up, and the
	 * POST's refusal handles a number sold since); its entry is taken out
	 * whatever happens next, so a second purchase looks again.
	 */
	for (int i = 0; i < n; i++)
	{
		nbs[i].phone = phones[i];
		nbs[i].slot = slots[i];
	}
	for (int i = 0; i < n; i++)
		take_seen(&nbs[i]);
	if (n > 1)
		prefetch_numbers(nbs, n);
	for (int i = 0; i < n; i++)
	{
		resolve_number(&nbs[i]);
		exact_total += check_and_price(&nbs[i], &acct, &cfg);
	}
	if (given->bundle_sid == NULL)
		pick_bundle(nbs, n, &acct, &cfg);

	/*
	 * 4. the exact price: hold it, and check again if it is more than the
	 * cheapest (a number of a dearer type than the country's cheapest)
	 */
	for (int i = 0; i < n; i++)
		intent_set_hold(nbs[i].slot, nbs[i].hold_cents);
	if (exact_total > total)
		check_funds(&acct, intents_held(account_id) - exact_total, exact_total);

	/*
	 * 5. buy (create.c): the proof that this database asked for them
	 * committed before any request, then one POST per number, all sent at
	 * once when there are several; any failure aborts the whole purchase.
	 * 6. then the rows and the ledger entries (the account row is locked
	 * there), written while the recorder commits what Twilio created
	 */
	for (int i = 0; i < n; i++)
		purchase_creation(&nbs[i], &acct, &cfg, &creations[i]);
	create_all(creations, n, &cfg, resources, record_bought, &bought);
	return bought.rows;
}

static char **
phone_array(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **phones;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("phone_numbers must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	if (*n < 1 || *n > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("phone_numbers must hold 1 to 100 numbers, not %d", *n)));
	phones = palloc(sizeof(char *) * *n);
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("phone_numbers must not contain NULL")));
		phones[i] = TextDatumGetCString(elems[i]);
		validate_e164("phone_numbers", phones[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(phones[i], phones[j]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("phone_numbers lists %s twice", phones[i])));
	}
	return phones;
}

PG_FUNCTION_INFO_V1(tn_numbers_purchase);

/* numbers_purchase(account_id, phone_number, ...) -> owned_numbers */
Datum
tn_numbers_purchase(PG_FUNCTION_ARGS)
{
	int64		account_id;
	char	   *phone;
	NumberConfig cfg;
	SPITupleTable *tt;
	Datum		result;

	shmem_require_worker();
	account_id = validate_account_arg(fcinfo, 0);
	phone = validate_text_arg(fcinfo, 1);
	validate_e164("phone_number", phone);
	config_read(fcinfo, 2, &cfg);
	twilio_require_credentials();

	SPI_connect();
	tt = purchase(account_id, &phone, 1, &cfg);
	result = PointerGetDatum(SPI_returntuple(tt->vals[0], tt->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(tn_numbers_purchase_many);

/* numbers_purchase(account_id, phone_numbers text[], ...) -> SETOF owned_numbers */
Datum
tn_numbers_purchase_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		account_id;
	char	  **phones;
	int			n;
	NumberConfig cfg;
	SPITupleTable *tt;

	shmem_require_worker();
	account_id = validate_account_arg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("phone_numbers is required")));
	phones = phone_array(PG_GETARG_ARRAYTYPE_P(1), &n);
	config_read(fcinfo, 2, &cfg);
	twilio_require_credentials();

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	tt = purchase(account_id, phones, n, &cfg);
	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, tt->vals[i]);
	SPI_finish();
	PG_RETURN_VOID();
}
