/*
 * catalog.c — the read-only catalog: numbers_search and numbers_countries.
 *
 * numbers_search sends exactly one request: Twilio's search is one page of
 * at most PageSize (1–1000) numbers, and asking again only repeats numbers,
 * so max_results becomes PageSize.  Every argument is checked first (22023),
 * and each row carries the price the customer will pay (pricing.c).  A type
 * the country does not offer (Twilio answers 404) gives zero rows.  The
 * reply is read straight into rows (search_reply.c).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "compat.h"
#include "errcodes.h"
#include "http.h"
#include "pricing.h"
#include "reply.h"
#include "search_reply.h"
#include "seen_numbers.h"
#include "twilio.h"
#include "validate.h"

/* numbers_search's arguments, in the SQL declaration's order */
enum
{
	ARG_COUNTRY, ARG_NUMBER_TYPE, ARG_AREA_CODE, ARG_CONTAINS,
	ARG_SMS, ARG_MMS, ARG_VOICE, ARG_FAX,
	ARG_IN_REGION, ARG_IN_LOCALITY, ARG_IN_POSTAL_CODE, ARG_IN_RATE_CENTER, ARG_IN_LATA,
	ARG_NEAR_NUMBER, ARG_NEAR_LAT_LONG, ARG_DISTANCE,
	ARG_EXCLUDE_ALL, ARG_EXCLUDE_LOCAL, ARG_EXCLUDE_FOREIGN, ARG_BETA, ARG_MAX_RESULTS,
	SEARCH_NARGS
};

/* A free-text filter: at most 64 characters, no control characters. */
static void
check_filter_text(const char *arg, const char *value)
{
	if (value == NULL)
		return;
	/* characters, not bytes: "Zürich" is six */
	if (value[0] == '\0' || pg_mbstrlen(value) > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be 1 to 64 characters long", arg)));
	for (const char *p = value; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", arg)));
}

/* Twilio applies these filters to US and Canadian numbers only. */
static void
check_nanp_only(const char *arg, const char *iso)
{
	if (strcmp(iso, "US") != 0 && strcmp(iso, "CA") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s applies only to US and CA numbers, not to %s", arg, iso),
				 errhint("in_locality and contains work in every country.")));
}

/* A plain decimal degree: [-]digits[.digits] — no exponent, no hex, no spaces. */
static bool
is_plain_degree(const char *s, size_t len)
{
	size_t		i = 0;
	size_t		digits = 0;

	if (i < len && s[i] == '-')
		i++;
	for (; i < len && isdigit((unsigned char) s[i]); i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && isdigit((unsigned char) s[i]); i++)
			digits++;
	return digits > 0 && i == len;
}

/* "lat,long" with lat in [-90, 90] and long in [-180, 180], as Twilio reads it. */
static void
check_lat_long(const char *value)
{
	const char *comma = strchr(value, ',');
	bool		ok = comma != NULL &&
		is_plain_degree(value, comma - value) && is_plain_degree(comma + 1, strlen(comma + 1));

	if (ok)
	{
		double		lat = strtod(value, NULL);
		double		lon = strtod(comma + 1, NULL);

		ok = lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("near_lat_long must be \"latitude,longitude\" in decimal degrees, not \"%s\"", value),
				 errhint("For example '37.7749,-122.4194'.")));
}

static const char *
bool_param(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return NULL;
	return PG_GETARG_BOOL(n) ? "true" : "false";
}

/*
 * Check every argument and build the search URL.  Returns the URL; sets
 * *iso and *type to the normalized country and type.
 */
static char *
build_search_url(FunctionCallInfo fcinfo, char **iso, const char **type)
{
	char	   *area_code = validate_text_arg(fcinfo, ARG_AREA_CODE);
	char	   *contains = validate_text_arg(fcinfo, ARG_CONTAINS);
	char	   *in_region = validate_text_arg(fcinfo, ARG_IN_REGION);
	char	   *in_locality = validate_text_arg(fcinfo, ARG_IN_LOCALITY);
	char	   *in_postal_code = validate_text_arg(fcinfo, ARG_IN_POSTAL_CODE);
	char	   *in_rate_center = validate_text_arg(fcinfo, ARG_IN_RATE_CENTER);
	char	   *in_lata = validate_text_arg(fcinfo, ARG_IN_LATA);
	char	   *near_number = validate_text_arg(fcinfo, ARG_NEAR_NUMBER);
	char	   *near_lat_long = validate_text_arg(fcinfo, ARG_NEAR_LAT_LONG);
	int			max_results;
	char		num[32];
	StringInfoData url;

	*iso = validate_country("country", validate_text_arg(fcinfo, ARG_COUNTRY));
	*type = validate_number_type(PG_ARGISNULL(ARG_NUMBER_TYPE) ? "local"
								 : validate_text_arg(fcinfo, ARG_NUMBER_TYPE));

	if (area_code)
	{
		if (strlen(area_code) != 3 || strspn(area_code, "0123456789") != 3 ||
			area_code[0] < '2')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("area_code must be three digits starting with 2-9, not \"%s\"", area_code)));
		check_nanp_only("area_code", *iso);
	}
	if (contains)
		validate_contains(contains);
	check_filter_text("in_region", in_region);
	check_filter_text("in_locality", in_locality);
	check_filter_text("in_postal_code", in_postal_code);
	check_filter_text("in_rate_center", in_rate_center);
	check_filter_text("in_lata", in_lata);
	if (in_region)
		check_nanp_only("in_region", *iso);
	if (in_postal_code)
		check_nanp_only("in_postal_code", *iso);
	if (in_lata)
		check_nanp_only("in_lata", *iso);
	if (in_rate_center)
	{
		check_nanp_only("in_rate_center", *iso);
		if (in_lata == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("in_rate_center requires in_lata"),
					 errhint("Twilio looks a rate center up within a LATA; pass both.")));
	}
	if (near_number)
	{
		validate_e164("near_number", near_number);
		check_nanp_only("near_number", *iso);
	}
	if (near_lat_long)
	{
		check_lat_long(near_lat_long);
		check_nanp_only("near_lat_long", *iso);
	}
	if (near_number && near_lat_long)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("near_number and near_lat_long cannot both be given")));
	if (!PG_ARGISNULL(ARG_DISTANCE))
	{
		int			distance = PG_GETARG_INT32(ARG_DISTANCE);

		if (distance < 0 || distance > 500)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("distance must be between 0 and 500 miles, not %d", distance)));
		if (near_number == NULL && near_lat_long == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("distance requires near_number or near_lat_long")));
	}
	max_results = PG_ARGISNULL(ARG_MAX_RESULTS) ? 20 : PG_GETARG_INT32(ARG_MAX_RESULTS);
	if (max_results < 1 || max_results > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_results must be between 1 and 1000, not %d", max_results),
				 errhint("Twilio returns at most 1000 numbers per search.")));

	twilio_require_credentials();

	initStringInfo(&url);
	appendStringInfoString(&url, twilio_account_url_for(NULL, "/AvailablePhoneNumbers/%s/%s.json",
												  *iso, validate_type_path(*type)));
	twilio_query_add(&url, "AreaCode", area_code);
	twilio_query_add(&url, "Contains", contains);
	twilio_query_add(&url, "SmsEnabled", bool_param(fcinfo, ARG_SMS));
	twilio_query_add(&url, "MmsEnabled", bool_param(fcinfo, ARG_MMS));
	twilio_query_add(&url, "VoiceEnabled", bool_param(fcinfo, ARG_VOICE));
	twilio_query_add(&url, "FaxEnabled", bool_param(fcinfo, ARG_FAX));
	twilio_query_add(&url, "InRegion", in_region);
	twilio_query_add(&url, "InLocality", in_locality);
	twilio_query_add(&url, "InPostalCode", in_postal_code);
	twilio_query_add(&url, "InRateCenter", in_rate_center);
	twilio_query_add(&url, "InLata", in_lata);
	twilio_query_add(&url, "NearNumber", near_number);
	twilio_query_add(&url, "NearLatLong", near_lat_long);
	if (!PG_ARGISNULL(ARG_DISTANCE))
	{
		snprintf(num, sizeof(num), "%d", PG_GETARG_INT32(ARG_DISTANCE));
		twilio_query_add(&url, "Distance", num);
	}
	twilio_query_add(&url, "ExcludeAllAddressRequired", bool_param(fcinfo, ARG_EXCLUDE_ALL));
	twilio_query_add(&url, "ExcludeLocalAddressRequired", bool_param(fcinfo, ARG_EXCLUDE_LOCAL));
	twilio_query_add(&url, "ExcludeForeignAddressRequired", bool_param(fcinfo, ARG_EXCLUDE_FOREIGN));
	twilio_query_add(&url, "Beta", bool_param(fcinfo, ARG_BETA));
	snprintf(num, sizeof(num), "%d", max_results);
	twilio_query_add(&url, "PageSize", num);
	return url.data;
}

static void
set_text(Datum *values, bool *nulls, int col, char *s)
{
	nulls[col] = (s == NULL);
	values[col] = s ? CStringGetTextDatum(s) : (Datum) 0;
}

PG_FUNCTION_INFO_V1(tn_numbers_search);

/* numbers_search(...): Twilio's available numbers with the customer's price. */
Datum
tn_numbers_search(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *iso;
	const char *type;
	char	   *url;
	CustomerPrice price;
	TwilioReply reply;

	url = build_search_url(fcinfo, &iso, &type);
	InitMaterializedSRF(fcinfo, 0);

	/* the price first: a search that cannot be priced sends no search */
	pricing_customer_price(iso, type, &price);

	twilio_request(HTTP_GET, url, NULL, TWILIO_OK_404 | TWILIO_RAW_BODY,
				   "search Twilio's available numbers", &reply);
	if (reply.http.status == 404 || reply.http.body_len == 0)
		PG_RETURN_VOID();		/* the country does not offer this type */

	seen_numbers_search_start();
	if (!search_reply_to_rows(reply.http.body, reply.http.body_len, rsinfo, type, iso, &price))
		ereport(ERROR,
				(errcode(ERRCODE_TN_TWILIO_BAD_REPLY),
				 errmsg("could not search Twilio's available numbers: Twilio's reply is not valid JSON"),
				 errdetail("HTTP status %ld, %zu bytes received.", reply.http.status, reply.http.body_len),
				 errhint("The reply was cut short or damaged on the way; retry the call.")));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tn_numbers_countries);

/* numbers_countries(): where Twilio offers numbers, and which types. */
Datum
tn_numbers_countries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TwilioReply reply;
	JsonbContainer *list;
	int			n;

	twilio_require_credentials();
	InitMaterializedSRF(fcinfo, 0);

	twilio_request(HTTP_GET, twilio_account_url_for(NULL, "/AvailablePhoneNumbers.json"), NULL, 0,
				   "list Twilio's countries", &reply);
	if (reply.json == NULL)
		PG_RETURN_VOID();

	list = jb_array(&reply.json->root, "countries");
	n = jb_array_size(list);
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *e = jb_array_object(list, i);
		JsonbContainer *subs;
		Datum		values[4];
		bool		nulls[4] = {0};
		Datum	   *types = palloc(sizeof(Datum) * validate_type_count());
		int			ntypes = 0;

		if (e == NULL)
			continue;
		subs = jb_object(e, "subresource_uris");
		for (int t = 0; t < validate_type_count(); t++)
		{
			const char *type = validate_type_name(t);
			JsonbValue	buf;

			if (subs && getKeyJsonValueFromContainer(subs, type, strlen(type), &buf))
				types[ntypes++] = CStringGetTextDatum(type);
		}
		set_text(values, nulls, 0, jb_text(e, "country_code"));
		set_text(values, nulls, 1, jb_text(e, "country"));
		values[2] = PointerGetDatum(construct_array(types, ntypes, TEXTOID, -1, false, TYPALIGN_INT));
		values[3] = BoolGetDatum(jb_bool(e, "beta", &nulls[3]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
