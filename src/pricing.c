/*
 * pricing.c — Twilio's number prices and the prices our customers pay.
 *
 * Twilio's per-country prices (Pricing v1) are cached in the table
 * pricing_cache for twilio_numbers.pricing_ttl_s, so a search does not call
 * the pricing API each time.  A customer price comes from price_list when
 * the reseller has a row for (country, type); otherwise it is Twilio's
 * current price plus twilio_numbers.markup_percent, rounded half-up to
 * cents, with no setup fee.
 *
 * numbers_pricing(country) shows both, one row per number type.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "commands/trigger.h"
#include "catalog/namespace.h"

#include "compat.h"
#include "pricing.h"
#include "errcodes.h"
#include "http.h"
#include "reply.h"
#include "settings.h"
#include "twilio.h"
#include "validate.h"

/* One country's prices as Twilio lists them. */
typedef struct TwilioPrice
{
	const char *number_type;	/* ours: local, toll_free, ... */
	Datum		base_price;
	Datum		current_price;
	bool		base_null;
	bool		current_null;
} TwilioPrice;

typedef struct CountryPrices
{
	char	   *iso_country;
	char	   *country;
	char	   *currency;
	TimestampTz fetched_at;		/* oldest row's, or now for a fresh fetch */
	int			count;
	TwilioPrice *prices;
} CountryPrices;

static SPIPlanPtr cache_read_plan = NULL;
static SPIPlanPtr price_list_plan = NULL;

/* A saved SPI plan, prepared on first use. */
static SPIPlanPtr
saved_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}

static int
cmp_price_type(const void *a, const void *b)
{
	return strcmp(((const TwilioPrice *) a)->number_type, ((const TwilioPrice *) b)->number_type);
}

/* Fetch a country's prices from Twilio; count 0 if Twilio has none (404). */
static void
fetch_from_twilio(const char *iso, CountryPrices *cp)
{
	TwilioReply reply;
	JsonbContainer *root;
	JsonbContainer *list;
	int			n;
	char	   *unit;

	twilio_require_credentials();
	twilio_request(HTTP_GET, twilio_url(TWILIO_PRICING, "/v1/PhoneNumbers/Countries/%s", iso),
				   NULL, TWILIO_OK_404, "fetch Twilio's number prices", &reply);
	if (reply.http.status == 404 || reply.json == NULL)
		return;

	root = &reply.json->root;
	cp->country = jb_text(root, "country");
	unit = jb_text(root, "price_unit");
	if (unit)
		for (char *p = unit; *p; p++)
			*p = pg_toupper((unsigned char) *p);
	cp->currency = unit;

	list = jb_array(root, "phone_number_prices");
	n = jb_array_size(list);
	cp->prices = palloc0(sizeof(TwilioPrice) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *e = jb_array_object(list, i);
		const char *type = e ? validate_type_from_twilio(jb_text(e, "number_type")) : NULL;
		TwilioPrice *tp;

		if (type == NULL)
			continue;			/* a type we do not sell */
		tp = &cp->prices[cp->count++];
		tp->number_type = type;
		tp->base_price = jb_numeric(e, "base_price", &tp->base_null);
		tp->current_price = jb_numeric(e, "current_price", &tp->current_null);
	}
	/* the same order as a read from the cache */
	qsort(cp->prices, cp->count, sizeof(TwilioPrice), cmp_price_type);
}

/* Replace the cached rows of one country (skipped in read-only xacts). */
static void
store_in_cache(const CountryPrices *cp)
{
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, TEXTOID, TEXTOID};

	if (XactReadOnly || RecoveryInProgress())
		return;

	/*
	 * One writer per country at a time, and nobody waits: the rows stay
	 * locked until the caller's transaction ends (a purchase, across its
	 * HTTP calls), so a session that finds another caching the country
	 * keeps its prices to itself this time.
	 */
	if (SPI_execute_with_args("SELECT pg_try_advisory_xact_lock(hashtext('twilio_numbers.pricing_cache'), "
							  "hashtext($1))", 1, (Oid[]) {TEXTOID},
							  (Datum[]) {CStringGetTextDatum(cp->iso_country)}, NULL, true, 1) != SPI_OK_SELECT ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &(bool) {false})))
		return;

	SPI_execute_with_args("DELETE FROM twilio_numbers.pricing_cache WHERE iso_country = $1",
						  1, types, (Datum[]) {CStringGetTextDatum(cp->iso_country)}, NULL,
						  false, 0);
	for (int i = 0; i < cp->count; i++)
	{
		const TwilioPrice *tp = &cp->prices[i];
		Datum		values[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		values[0] = CStringGetTextDatum(cp->iso_country);
		values[1] = CStringGetTextDatum(tp->number_type);
		values[2] = cp->country ? CStringGetTextDatum(cp->country) : (Datum) 0;
		nulls[2] = cp->country ? ' ' : 'n';
		values[3] = tp->base_price;
		nulls[3] = tp->base_null ? 'n' : ' ';
		values[4] = tp->current_price;
		nulls[4] = tp->current_null ? 'n' : ' ';
		values[5] = cp->currency ? CStringGetTextDatum(cp->currency) : (Datum) 0;
		nulls[5] = cp->currency ? ' ' : 'n';
		if (SPI_execute_with_args("INSERT INTO twilio_numbers.pricing_cache "
								  "(iso_country, number_type, country, base_price, current_price, currency, fetched_at) "
								  "VALUES ($1, $2, $3, $4, $5, $6, now()) "
								  /* another session may be caching the same country */
								  "ON CONFLICT (iso_country, number_type) DO UPDATE SET "
								  "country = excluded.country, base_price = excluded.base_price, "
								  "current_price = excluded.current_price, currency = excluded.currency, "
								  "fetched_at = excluded.fetched_at",
								  6, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write pricing_cache");
	}
}

/* The country Twilio last had no prices for, and in which transaction (its start). */
static char priceless_iso[8] = "";
static TimestampTz priceless_xact = 0;

/*
 * A country's Twilio prices: from pricing_cache while fresh, else from
 * Twilio (and then cached).  Runs inside an SPI connection.
 */
static CountryPrices *
load_country_prices(const char *iso)
{
	CountryPrices *cp = palloc0(sizeof(CountryPrices));
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	bool		fresh = true;
	uint64		n;

	cp->iso_country = pstrdup(iso);
	args[0] = CStringGetTextDatum(iso);
	args[1] = Int32GetDatum(tn_pricing_ttl_s);
	if (SPI_execute_plan(saved_plan(&cache_read_plan,
									"SELECT number_type, base_price, current_price, country, currency, "
									"fetched_at > now() - make_interval(secs => $2) AS fresh, fetched_at "
									"FROM twilio_numbers.pricing_cache WHERE iso_country = $1 "
									"ORDER BY number_type",
									2, argtypes),
						 args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pricing_cache");

	n = SPI_processed;
	if (n > 0)
	{
		cp->prices = palloc0(sizeof(TwilioPrice) * n);
		for (uint64 i = 0; i < n && fresh; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			TwilioPrice *tp = &cp->prices[cp->count++];
			bool		isnull;

			tp->number_type = validate_type_from_twilio(SPI_getvalue(tup, desc, 1));
			tp->base_price = SPI_getbinval(tup, desc, 2, &tp->base_null);
			tp->current_price = SPI_getbinval(tup, desc, 3, &tp->current_null);
			if (!tp->base_null)
				tp->base_price = datumCopy(tp->base_price, false, -1);
			if (!tp->current_null)
				tp->current_price = datumCopy(tp->current_price, false, -1);
			cp->country = SPI_getvalue(tup, desc, 4);
			cp->currency = SPI_getvalue(tup, desc, 5);
			fresh = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
			if (i == 0 || DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull)) < cp->fetched_at)
				cp->fetched_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull));
		}
	}
	if (n > 0 && fresh)
		return cp;

	/* stale or missing: ask Twilio — once per transaction for a country it has no prices for */
	cp->count = 0;
	cp->country = NULL;
	cp->currency = NULL;
	cp->fetched_at = GetCurrentTimestamp();
	if (n == 0 && strcmp(priceless_iso, iso) == 0 && priceless_xact == GetCurrentTransactionStartTimestamp())
		return cp;
	fetch_from_twilio(iso, cp);
	store_in_cache(cp);
	if (cp->count == 0)
	{
		/*
		 * Nothing to cache: without this, every type of the country asked
		 * about in this transaction (a purchase prices each type a number
		 * may be) would ask Twilio again.
		 */
		strlcpy(priceless_iso, iso, sizeof(priceless_iso));
		priceless_xact = GetCurrentTransactionStartTimestamp();
	}
	return cp;
}

/* Twilio's current price plus the markup, rounded half-up to cents. */
static Datum
marked_up(Datum current)
{
	Datum		factor = DirectFunctionCall1(float8_numeric,
											 Float8GetDatum(1.0 + tn_markup_percent / 100.0));
	Datum		raw = DirectFunctionCall2(numeric_mul, current, factor);

	return DirectFunctionCall2(numeric_round, raw, Int32GetDatum(2));
}

static Datum
zero_numeric(void)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum("0.00"),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * The price a customer pays for a number of this country and type:
 * price_list first, then Twilio's price with the markup.  price->found is
 * false when neither knows the type.  *fetched_at: when Twilio's price was
 * fetched, DT_NOEND when the price list decided.
 */
static void
customer_price_from_tables(const char *iso_country, const char *number_type, CustomerPrice *price,
						   TimestampTz *fetched_at)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	MemoryContext callercxt = CurrentMemoryContext;

	memset(price, 0, sizeof(*price));
	args[0] = CStringGetTextDatum(iso_country);
	args[1] = CStringGetTextDatum(number_type);

	SPI_connect();
	if (SPI_execute_plan(saved_plan(&price_list_plan,
									"SELECT setup_price, monthly_price, currency "
									"FROM twilio_numbers.price_list "
									"WHERE iso_country = $1 AND number_type = $2",
									2, argtypes),
						 args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read price_list");

	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);

		*fetched_at = DT_NOEND;
		price->found = true;
		price->setup_price = datumCopy(SPI_getbinval(tup, desc, 1, &isnull), false, -1);
		price->monthly_price = datumCopy(SPI_getbinval(tup, desc, 2, &isnull), false, -1);
		price->currency = SPI_getvalue(tup, desc, 3);	/* in callercxt */
		MemoryContextSwitchTo(spicxt);
	}
	else
	{
		CountryPrices *cp = load_country_prices(iso_country);

		*fetched_at = cp->fetched_at;
		for (int i = 0; i < cp->count; i++)
		{
			if (strcmp(cp->prices[i].number_type, number_type) != 0 || cp->prices[i].current_null)
				continue;
			{
				MemoryContext spicxt = MemoryContextSwitchTo(callercxt);

				price->found = true;
				price->setup_price = zero_numeric();
				price->monthly_price = marked_up(cp->prices[i].current_price);
				price->currency = cp->currency ? pstrdup(cp->currency) : NULL;
				MemoryContextSwitchTo(spicxt);
			}
			break;
		}
	}
	SPI_finish();
}

/*
 * A backend-local cache of customer prices, so a search does not run SQL to
 * price itself.  An entry lives until price_list or pricing_cache changes
 * (their trigger sends a relcache invalidation to every backend, and our
 * callback clears the cache), until pricing_ttl_s after Twilio's price was
 * fetched, and until markup_percent changes.
 */
typedef struct PriceCacheEntry
{
	char		iso[3];
	char		type[24];
	CustomerPrice price;
	TimestampTz fetched_at;		/* DT_NOEND: from price_list */
	double		markup;
} PriceCacheEntry;

#define PRICE_CACHE_SIZE 64

static MemoryContext price_cxt = NULL;
static PriceCacheEntry *price_cache = NULL;
static int	price_cache_n = 0;
static Oid	price_list_relid = InvalidOid;
static Oid	pricing_cache_relid = InvalidOid;

static void
price_cache_reset(void)
{
	price_cache_n = 0;
	if (price_cxt)
		MemoryContextReset(price_cxt);
	price_cache = NULL;
}

/* Relcache callback: a price table changed (or everything was invalidated). */
static void
price_cache_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == price_list_relid || relid == pricing_cache_relid)
	{
		price_cache_reset();
		price_list_relid = InvalidOid;	/* looked up again: the tables may be new */
	}
}

/* *dst = a copy of *src in the current memory context */
static void
copy_price(CustomerPrice *dst, const CustomerPrice *src)
{
	dst->found = src->found;
	dst->setup_price = dst->monthly_price = (Datum) 0;
	dst->currency = NULL;
	if (src->found)
	{
		dst->setup_price = datumCopy(src->setup_price, false, -1);
		dst->monthly_price = datumCopy(src->monthly_price, false, -1);
		dst->currency = src->currency ? pstrdup(src->currency) : NULL;
	}
}

void
pricing_customer_price(const char *iso_country, const char *number_type, CustomerPrice *price)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz fetched_at;
	PriceCacheEntry *e;
	MemoryContext old;

	if (price_cxt == NULL)
	{
		price_cxt = AllocSetContextCreate(TopMemoryContext, "twilio_numbers price cache",
										  ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(price_cache_relcache_callback, (Datum) 0);
	}
	if (!OidIsValid(price_list_relid))
	{
		Oid			nsp = get_namespace_oid(TN_SCHEMA, false);

		price_cache_reset();
		price_list_relid = get_relname_relid("price_list", nsp);
		pricing_cache_relid = get_relname_relid("pricing_cache", nsp);
	}

	for (int i = 0; i < price_cache_n; i++)
	{
		e = &price_cache[i];
		if (strcmp(e->iso, iso_country) != 0 || strcmp(e->type, number_type) != 0)
			continue;
		if (e->markup == tn_markup_percent &&
			(e->fetched_at == DT_NOEND ||
			 now < TimestampTzPlusMilliseconds(e->fetched_at, (int64) tn_pricing_ttl_s * 1000)))
		{
			/* a copy: the cache may be reset while the caller still holds it */
			copy_price(price, &e->price);
			return;
		}
		/* stale: drop it */
		price_cache[i] = price_cache[--price_cache_n];
		break;
	}

	customer_price_from_tables(iso_country, number_type, price, &fetched_at);

	if (price_cache_n == PRICE_CACHE_SIZE)
		price_cache_reset();
	old = MemoryContextSwitchTo(price_cxt);
	if (price_cache == NULL)
		price_cache = palloc(sizeof(PriceCacheEntry) * PRICE_CACHE_SIZE);
	e = &price_cache[price_cache_n++];
	strlcpy(e->iso, iso_country, sizeof(e->iso));
	strlcpy(e->type, number_type, sizeof(e->type));
	e->fetched_at = fetched_at;
	e->markup = tn_markup_percent;
	copy_price(&e->price, price);
	MemoryContextSwitchTo(old);
}

PG_FUNCTION_INFO_V1(tn_price_list_changed);

/* Trigger on price_list and pricing_cache: every backend forgets its prices. */
Datum
tn_price_list_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "tn_price_list_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(tn_numbers_pricing);

/*
 * numbers_pricing(country): one row per number type Twilio prices or the
 * price list names, with Twilio's price and ours.
 */
Datum
tn_numbers_pricing(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *iso;
	CountryPrices *cp;
	Oid			argtypes[1] = {TEXTOID};
	MemoryContext callercxt = CurrentMemoryContext;
	uint64		nlist;
	SPITupleTable *list;

	if (PG_ARGISNULL(0))
		validate_country("country", NULL);
	iso = validate_country("country", text_to_cstring(PG_GETARG_TEXT_PP(0)));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	cp = load_country_prices(iso);

	if (SPI_execute_with_args("SELECT number_type, setup_price, monthly_price, currency "
							  "FROM twilio_numbers.price_list WHERE iso_country = $1",
							  1, argtypes, (Datum[]) {CStringGetTextDatum(iso)}, NULL, true, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not read price_list");
	nlist = SPI_processed;
	list = SPI_tuptable;

	/* Twilio's types, each with our price (price list, else markup) */
	for (int i = 0; i < cp->count; i++)
	{
		TwilioPrice *tp = &cp->prices[i];
		Datum		values[8];
		bool		nulls[8] = {0};
		bool		listed = false;

		values[0] = CStringGetTextDatum(iso);
		values[1] = cp->country ? CStringGetTextDatum(cp->country) : (Datum) 0;
		nulls[1] = cp->country == NULL;
		values[2] = CStringGetTextDatum(tp->number_type);
		values[3] = tp->base_price;
		nulls[3] = tp->base_null;
		values[4] = tp->current_price;
		nulls[4] = tp->current_null;
		for (uint64 j = 0; j < nlist; j++)
		{
			HeapTuple	tup = list->vals[j];

			if (strcmp(SPI_getvalue(tup, list->tupdesc, 1), tp->number_type) == 0)
			{
				values[5] = SPI_getbinval(tup, list->tupdesc, 2, &nulls[5]);
				values[6] = SPI_getbinval(tup, list->tupdesc, 3, &nulls[6]);
				values[7] = CStringGetTextDatum(SPI_getvalue(tup, list->tupdesc, 4));
				listed = true;
				break;
			}
		}
		if (!listed)
		{
			values[5] = zero_numeric();
			nulls[5] = tp->current_null;
			if (!tp->current_null)
				values[6] = marked_up(tp->current_price);
			nulls[6] = tp->current_null;
			values[7] = cp->currency ? CStringGetTextDatum(cp->currency) : (Datum) 0;
			nulls[7] = cp->currency == NULL;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	/* types only the price list names (the reseller sells them anyway) */
	for (uint64 j = 0; j < nlist; j++)
	{
		HeapTuple	tup = list->vals[j];
		char	   *type = SPI_getvalue(tup, list->tupdesc, 1);
		bool		known = false;
		Datum		values[8];
		bool		nulls[8] = {0};

		for (int i = 0; i < cp->count && !known; i++)
			known = strcmp(cp->prices[i].number_type, type) == 0;
		if (known)
			continue;
		values[0] = CStringGetTextDatum(iso);
		values[1] = cp->country ? CStringGetTextDatum(cp->country) : (Datum) 0;
		nulls[1] = cp->country == NULL;
		values[2] = CStringGetTextDatum(type);
		nulls[3] = nulls[4] = true;
		values[5] = SPI_getbinval(tup, list->tupdesc, 2, &nulls[5]);
		values[6] = SPI_getbinval(tup, list->tupdesc, 3, &nulls[6]);
		values[7] = CStringGetTextDatum(SPI_getvalue(tup, list->tupdesc, 4));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	SPI_finish();
	MemoryContextSwitchTo(callercxt);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tn_customer_price_sql);

/* _customer_price(iso_country, number_type): the customer's price, for SQL. */
Datum
tn_customer_price_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	CustomerPrice price;
	Datum		values[3];
	bool		nulls[3] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pricing_customer_price(text_to_cstring(PG_GETARG_TEXT_PP(0)),
						   text_to_cstring(PG_GETARG_TEXT_PP(1)), &price);
	values[0] = price.setup_price;
	values[1] = price.monthly_price;
	values[2] = price.currency ? CStringGetTextDatum(price.currency) : (Datum) 0;
	nulls[0] = nulls[1] = !price.found;
	nulls[2] = !price.found || price.currency == NULL;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
