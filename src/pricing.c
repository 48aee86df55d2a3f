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
#include "store.h"
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
	const char **types;
	Datum	   *base;
	Datum	   *current;
	bool	   *base_null;
	bool	   *current_null;

	if (XactReadOnly || RecoveryInProgress())
		return;

	types = palloc(sizeof(char *) * Max(cp->count, 1));
	base = palloc(sizeof(Datum) * Max(cp->count, 1));
	current = palloc(sizeof(Datum) * Max(cp->count, 1));
	base_null = palloc(sizeof(bool) * Max(cp->count, 1));
	current_null = palloc(sizeof(bool) * Max(cp->count, 1));
	for (int i = 0; i < cp->count; i++)
	{
		types[i] = cp->prices[i].number_type;
		base[i] = cp->prices[i].base_price;
		base_null[i] = cp->prices[i].base_null;
		current[i] = cp->prices[i].current_price;
		current_null[i] = cp->prices[i].current_null;
	}

	/*
	 * One writer per country at a time, and nobody waits (_pricing_cache_save):
	 * a session that finds another caching the country keeps its prices to
	 * itself this time.
	 */
	store_price_cache_save(cp->iso_country, cp->country, cp->currency, cp->count, types, base, base_null,
						   current, current_null);
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
	StorePriceCached *rows;
	bool		fresh = true;
	int			n;

	cp->iso_country = pstrdup(iso);
	n = store_price_cached(iso, tn_pricing_ttl_s, &rows);
	if (n > 0)
	{
		cp->prices = palloc0(sizeof(TwilioPrice) * n);
		for (int i = 0; i < n && fresh; i++)
		{
			TwilioPrice *tp = &cp->prices[cp->count++];

			tp->number_type = validate_type_from_twilio(rows[i].number_type);
			tp->base_price = rows[i].base_price;
			tp->base_null = rows[i].base_null;
			tp->current_price = rows[i].current_price;
			tp->current_null = rows[i].current_null;
			cp->country = rows[i].country;
			cp->currency = rows[i].currency;
			fresh = rows[i].fresh;
			if (i == 0 || rows[i].fetched_at < cp->fetched_at)
				cp->fetched_at = rows[i].fetched_at;
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
	MemoryContext callercxt = CurrentMemoryContext;
	StorePriceListed *listed;

	memset(price, 0, sizeof(*price));

	SPI_connect();
	if (store_price_list(iso_country, number_type, &listed) == 1)
	{
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);

		*fetched_at = DT_NOEND;
		price->found = true;
		price->setup_price = datumCopy(listed[0].setup_price, false, -1);
		price->monthly_price = datumCopy(listed[0].monthly_price, false, -1);
		price->currency = pstrdup(listed[0].currency);
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
	MemoryContext callercxt = CurrentMemoryContext;
	int			nlist;
	StorePriceListed *list;

	if (PG_ARGISNULL(0))
		validate_country("country", NULL);
	iso = validate_country("country", text_to_cstring(PG_GETARG_TEXT_PP(0)));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	cp = load_country_prices(iso);

	nlist = store_price_list(iso, NULL, &list);

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
		for (int j = 0; j < nlist; j++)
		{
			if (strcmp(list[j].number_type, tp->number_type) == 0)
			{
				values[5] = list[j].setup_price;
				values[6] = list[j].monthly_price;
				values[7] = CStringGetTextDatum(list[j].currency);
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
	for (int j = 0; j < nlist; j++)
	{
		char	   *type = list[j].number_type;
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
		values[5] = list[j].setup_price;
		values[6] = list[j].monthly_price;
		values[7] = CStringGetTextDatum(list[j].currency);
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
