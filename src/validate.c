/*
 * validate.c — argument checks that run before any HTTP call.
 *
 * Every function here either returns (possibly a normalized copy) or raises
 * 22023 (invalid_parameter_value) with a message naming the argument and
 * saying what is wrong, so that bad input never costs a request to Twilio.
 */
#include "postgres.h"

#include <stdlib.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "validate.h"

/* ISO 3166-1 alpha-2, officially assigned codes, sorted for bsearch. */
static const char *const iso_countries[] = {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
	"BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
	"BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
	"CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
	"EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
	"GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
	"HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
	"JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
	"LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
	"ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
	"NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
	"PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
	"SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
	"ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
	"TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
	"VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW"
};

/* Our number types, Twilio's path segment for each, in one table. */
typedef struct NumberType
{
	const char *name;			/* ours: what users pass and see */
	const char *path;			/* Twilio's AvailablePhoneNumbers segment */
} NumberType;

static const NumberType number_types[] = {
	{"local", "Local"},
	{"mobile", "Mobile"},
	{"toll_free", "TollFree"},
	{"national", "National"},
	{"voip", "Voip"},
	{"shared_cost", "SharedCost"},
	{"machine_to_machine", "MachineToMachine"},
};

/* Our number types, in the order numbers_countries lists them. */
int
validate_type_count(void)
{
	return lengthof(number_types);
}

const char *
validate_type_name(int i)
{
	return number_types[i].name;
}

static int
cmp_code(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* An ISO 3166-1 alpha-2 code, any case; returns it upper-cased. */
char *
validate_country(const char *arg, const char *value)
{
	char		code[3];
	const char *key = code;

	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is required", arg),
				 errhint("A two-letter ISO 3166-1 code such as 'US', 'GB' or 'DE'.")));
	if (strlen(value) != 2 ||
		!isalpha((unsigned char) value[0]) || !isalpha((unsigned char) value[1]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a two-letter ISO 3166-1 country code, not \"%s\"",
						arg, value),
				 errhint("For example 'US', 'GB' or 'DE'; numbers_countries() lists Twilio's.")));
	code[0] = pg_toupper((unsigned char) value[0]);
	code[1] = pg_toupper((unsigned char) value[1]);
	code[2] = '\0';
	if (bsearch(&key, iso_countries, lengthof(iso_countries), sizeof(char *), cmp_code) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is not an ISO 3166-1 country code", arg, value),
				 errhint("numbers_countries() lists the countries where Twilio offers numbers.")));
	return pstrdup(code);
}

/* One of our number types; returns the canonical (static) name. */
const char *
validate_number_type(const char *value)
{
	if (value != NULL)
		for (int i = 0; i < lengthof(number_types); i++)
			if (strcmp(value, number_types[i].name) == 0)
				return number_types[i].name;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("number_type must be one of local, mobile, toll_free, national, voip, "
					"shared_cost, machine_to_machine, not \"%s\"", value ? value : "NULL")));
	return NULL;				/* keep compiler quiet */
}

/* Twilio's path segment for one of our (checked) number types. */
const char *
validate_type_path(const char *number_type)
{
	for (int i = 0; i < lengthof(number_types); i++)
		if (strcmp(number_type, number_types[i].name) == 0)
			return number_types[i].path;
	elog(ERROR, "unknown number type \"%s\"", number_type);
	return NULL;
}

/*
 * Our name for a type as Twilio writes it in pricing ("toll free"), in
 * country subresources ("toll_free") or in the spec ("tollfree"); NULL if
 * it is none of ours.
 */
const char *
validate_type_from_twilio(const char *twilio_type)
{
	char		norm[64];
	int			n = 0;

	if (twilio_type == NULL)
		return NULL;
	for (const char *p = twilio_type; *p && n < (int) sizeof(norm) - 1; p++)
	{
		if (*p == ' ' || *p == '-')
			norm[n++] = '_';
		else
			norm[n++] = pg_tolower((unsigned char) *p);
	}
	norm[n] = '\0';
	if (strcmp(norm, "tollfree") == 0)
		return "toll_free";
	if (strcmp(norm, "sharedcost") == 0)
		return "shared_cost";
	if (strcmp(norm, "machinetomachine") == 0)
		return "machine_to_machine";
	for (int i = 0; i < lengthof(number_types); i++)
		if (strcmp(norm, number_types[i].name) == 0)
			return number_types[i].name;
	return NULL;
}

/* An E.164 number: '+', a non-zero digit, 7 to 15 digits in all. */
void
validate_e164(const char *arg, const char *value)
{
	size_t		len = value ? strlen(value) : 0;
	bool		ok = (len >= 8 && len <= 16 && value[0] == '+' && value[1] >= '1' && value[1] <= '9');

	/* North American numbers are always +1 and ten digits */
	if (ok && value[1] == '1' && len != 12)
		ok = false;
	for (size_t i = 1; ok && i < len; i++)
		if (value[i] < '0' || value[i] > '9')
			ok = false;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an E.164 phone number, not \"%s\"", arg, value ? value : "NULL"),
				 errhint("E.164 is '+', the country code and the number, digits only: '+14155550123'.")));
}

static void
contains_error(const char *value, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("contains pattern \"%s\" is invalid: %s", value, why),
			 errhint("2 to 16 characters: digits and letters, '*' for one digit and '%%' for any run "
					 "at the start or end, a leading '+' to anchor at the start, a trailing '$' at the end.")));
}

/*
 * Twilio's Contains rules: 2–16 characters of [0-9A-Za-z*%+$]; '+' only
 * first and '$' only last; '*' and '%' only in runs at either end of the
 * literal part (never between literals), never next to '+' or '$'; with a
 * wildcard, at least two literal characters.
 */
void
validate_contains(const char *value)
{
	size_t		len = strlen(value);
	size_t		start = 0;
	size_t		end = len;
	size_t		i;
	size_t		first_lit = SIZE_MAX;
	size_t		last_lit = 0;
	int			literals = 0;
	bool		wildcards = false;

	if (len < 2 || len > 16)
		contains_error(value, "it must be 2 to 16 characters long");
	for (i = 0; i < len; i++)
	{
		char		c = value[i];

		if (!(isalnum((unsigned char) c) || c == '*' || c == '%' || c == '+' || c == '$'))
			contains_error(value, "only digits, letters and the meta-characters * % + $ are allowed");
		if (c == '+' && i != 0)
			contains_error(value, "'+' may only start the pattern");
		if (c == '$' && i != len - 1)
			contains_error(value, "'$' may only end the pattern");
	}
	if (value[0] == '+')
		start = 1;
	if (len > 0 && value[len - 1] == '$')
		end = len - 1;
	if (start < end && start == 1 && (value[1] == '*' || value[1] == '%'))
		contains_error(value, "'+' cannot be next to a wildcard");
	if (end > start && end == len - 1 && (value[end - 1] == '*' || value[end - 1] == '%'))
		contains_error(value, "'$' cannot be next to a wildcard");

	for (i = start; i < end; i++)
	{
		if (isalnum((unsigned char) value[i]))
		{
			literals++;
			if (first_lit == SIZE_MAX)
				first_lit = i;
			last_lit = i;
		}
		else
			wildcards = true;
	}
	if (literals == 0)
		contains_error(value, "it needs at least one digit or letter");
	for (i = first_lit; i <= last_lit; i++)
		if (!isalnum((unsigned char) value[i]))
			contains_error(value, "wildcards cannot be used between digits or letters");
	if (wildcards && literals < 2)
		contains_error(value, "a pattern with wildcards needs at least two digits or letters");
}

/*
 * A webhook URL: absolute http(s) with a host, at most 2048 characters, no
 * spaces or control characters (Twilio would store what it cannot call).
 */
void
validate_url(const char *arg, const char *value)
{
	const char *rest;
	size_t		authority;
	const char *host;
	bool		ok;

	if (value == NULL || value[0] == '\0')
		return;					/* empty clears the setting at Twilio */
	rest = strncmp(value, "https://", 8) == 0 ? value + 8 :
		strncmp(value, "http://", 7) == 0 ? value + 7 : NULL;
	ok = rest != NULL && strlen(value) <= 2048;
	for (const char *p = value; ok && *p; p++)
		ok = (unsigned char) *p > 0x20 && *p != 0x7f;
	if (ok)
	{
		/* the host: after any user:password@, before any :port */
		authority = strcspn(rest, "/?#");
		host = rest;
		for (size_t i = 0; i < authority; i++)
			if (rest[i] == '@')
				host = rest + i + 1;
		ok = host < rest + authority && *host != ':';
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an absolute http:// or https:// URL with a host, not \"%s\"", arg, value),
				 errhint("At most 2048 characters, without spaces or control characters.")));
}

/* GET or POST, as Twilio's webhook methods. */
void
validate_http_method(const char *arg, const char *value)
{
	if (value == NULL)
		return;
	if (strcmp(value, "GET") != 0 && strcmp(value, "POST") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be 'GET' or 'POST', not \"%s\"", arg, value)));
}

/* A Twilio SID: two-letter prefix and 32 hex digits ('' clears it). */
void
validate_sid(const char *arg, const char *value, const char *prefix)
{
	bool		ok;

	if (value == NULL || value[0] == '\0')
		return;
	ok = strlen(value) == 34 && strncmp(value, prefix, 2) == 0;
	for (int i = 2; ok && i < 34; i++)
		if (!isxdigit((unsigned char) value[i]))
			ok = false;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a Twilio SID: \"%s\" and 32 hex digits, not \"%s\"",
						arg, prefix, value)));
}

/* ---- where a number belongs ------------------------------------------------ */

/* Country calling codes of the countries Twilio sells numbers in. */
static const struct
{
	const char *code;
	const char *iso;
}			calling_codes[] = {
	{"7", "RU"}, {"20", "EG"}, {"27", "ZA"}, {"30", "GR"}, {"31", "NL"}, {"32", "BE"},
	{"33", "FR"}, {"34", "ES"}, {"36", "HU"}, {"39", "IT"}, {"40", "RO"}, {"41", "CH"},
	{"43", "AT"}, {"44", "GB"}, {"45", "DK"}, {"46", "SE"}, {"47", "NO"}, {"48", "PL"},
	{"49", "DE"}, {"51", "PE"}, {"52", "MX"}, {"54", "AR"}, {"55", "BR"}, {"56", "CL"},
	{"57", "CO"}, {"60", "MY"}, {"61", "AU"}, {"62", "ID"}, {"63", "PH"}, {"64", "NZ"},
	{"65", "SG"}, {"66", "TH"}, {"81", "JP"}, {"82", "KR"}, {"84", "VN"}, {"86", "CN"},
	{"90", "TR"}, {"91", "IN"}, {"92", "PK"}, {"212", "MA"}, {"234", "NG"}, {"254", "KE"},
	{"351", "PT"}, {"352", "LU"}, {"353", "IE"}, {"354", "IS"}, {"356", "MT"}, {"357", "CY"},
	{"358", "FI"}, {"359", "BG"}, {"370", "LT"}, {"371", "LV"}, {"372", "EE"}, {"385", "HR"},
	{"386", "SI"}, {"420", "CZ"}, {"421", "SK"}, {"852", "HK"}, {"886", "TW"}, {"966", "SA"},
	{"971", "AE"}, {"972", "IL"},
};

/* Canadian area codes; every other +1 number is treated as US. */
static const char *const ca_area_codes[] = {
	"204", "226", "236", "249", "250", "263", "289", "306", "343", "354", "365", "367", "368",
	"382", "387", "403", "416", "418", "428", "431", "437", "438", "450", "468", "474", "506",
	"514", "519", "548", "579", "581", "584", "587", "604", "613", "639", "647", "672", "683",
	"705", "709", "742", "753", "778", "780", "782", "807", "819", "825", "867", "873", "879",
	"902", "905",
};

static const char *const nanp_toll_free[] = {"800", "833", "844", "855", "866", "877", "888"};

/* The country of an E.164 number, from its calling code (22023 if none of Twilio's). */
const char *
validate_country_of(const char *phone)
{
	const char *digits = phone + 1;
	const char *best = NULL;
	size_t		bestlen = 0;

	if (digits[0] == '1')
	{
		for (int i = 0; i < lengthof(ca_area_codes); i++)
			if (strncmp(digits + 1, ca_area_codes[i], 3) == 0)
				return "CA";
		return "US";
	}
	for (int i = 0; i < lengthof(calling_codes); i++)
	{
		size_t		len = strlen(calling_codes[i].code);

		if (len > bestlen && strncmp(digits, calling_codes[i].code, len) == 0)
		{
			best = calling_codes[i].iso;
			bestlen = len;
		}
	}
	if (best == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("phone number %s is not in a country where Twilio sells numbers", phone)));
	return best;
}

/* A North American number's type, known by its prefix; NULL for others. */
const char *
validate_nanp_type(const char *phone)
{
	if (phone[1] != '1')
		return NULL;
	for (int i = 0; i < lengthof(nanp_toll_free); i++)
		if (strncmp(phone + 2, nanp_toll_free[i], 3) == 0)
			return "toll_free";
	return "local";
}

/* ---- SQL arguments ------------------------------------------------------ */

/* Argument n as a C string, NULL when SQL NULL. */
char *
validate_text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* The account_id argument n, which must not be NULL. */
int64
validate_account_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("account_id is required")));
	return PG_GETARG_INT64(n);
}

/* A friendly name: Twilio keeps at most 64 characters (not bytes), none a control character. */
void
validate_friendly_name(const char *value)
{
	if (value == NULL)
		return;
	if (pg_mbstrlen(value) > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("friendly_name must be at most 64 characters long")));
	for (const char *p = value; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("friendly_name must not contain control characters")));
}

PG_FUNCTION_INFO_V1(tn_nanp_country_sql);

/* _nanp_country(phone): 'US' or 'CA' for a +1 number (Canadian area codes). */
Datum
tn_nanp_country_sql(PG_FUNCTION_ARGS)
{
	char	   *phone = text_to_cstring(PG_GETARG_TEXT_PP(0));

	validate_e164("phone_number", phone);
	PG_RETURN_TEXT_P(cstring_to_text(validate_country_of(phone)));
}
