/*
 * search_reply.c — a search reply read straight into numbers_search rows.
 *
 * Searches are the hot path, and most of their time used to go into building
 * a jsonb of the whole reply only to read a few keys back out of it.  Here
 * PostgreSQL's own JSON parser (pg_parse_json) calls us back for each key and
 * scalar, and each element of available_phone_numbers becomes a row as soon
 * as its object closes.  Both wire forms are read: coordinates as decimal
 * strings (what Twilio sends) or numbers (the spec), capability keys in any
 * case ("SMS" or "sms"), booleans as JSON booleans or "true"/"false" — the
 * rules of reply.c, which every other reply is read with too.  Each row is
 * also remembered for a purchase that follows (seen_numbers.c).
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "search_reply.h"
#include "pricing.h"
#include "reply.h"
#include "seen_numbers.h"

/* numbers_search's result columns (the order of available_number) */
enum
{
	COL_PHONE_NUMBER, COL_FRIENDLY_NAME, COL_NUMBER_TYPE, COL_ISO_COUNTRY, COL_REGION,
	COL_LOCALITY, COL_POSTAL_CODE, COL_RATE_CENTER, COL_LATA, COL_LATITUDE, COL_LONGITUDE,
	COL_ADDRESS_REQUIREMENTS, COL_BETA, COL_VOICE, COL_SMS, COL_MMS, COL_FAX,
	COL_SETUP_PRICE, COL_MONTHLY_PRICE, COL_CURRENCY,
	SEARCH_NCOLS
};

/* The keys of an AvailablePhoneNumber we read; capabilities' keys after them. */
enum
{
	F_NONE = -1,
	F_PHONE_NUMBER, F_FRIENDLY_NAME, F_ISO_COUNTRY, F_REGION, F_LOCALITY, F_POSTAL_CODE,
	F_RATE_CENTER, F_LATA, F_LATITUDE, F_LONGITUDE, F_ADDRESS_REQUIREMENTS, F_BETA,
	F_VOICE, F_SMS, F_MMS, F_FAX,
	NFIELDS,
	F_CAPABILITIES = NFIELDS
};

/* k (of length len) is the key lit */
#define KEY_IS(k, len, lit) ((len) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/*
 * The F_* of an element's key: by its length, then its first character, then
 * one memcmp (a search reply has ~13 keys per number, 28 numbers a page).
 */
static int
element_field(const char *k, size_t len)
{
	switch (len)
	{
		case 4:
			return KEY_IS(k, len, "lata") ? F_LATA : KEY_IS(k, len, "beta") ? F_BETA : F_NONE;
		case 6:
			return KEY_IS(k, len, "region") ? F_REGION : F_NONE;
		case 8:
			if (k[2] == 't')
				return KEY_IS(k, len, "latitude") ? F_LATITUDE : F_NONE;
			return KEY_IS(k, len, "locality") ? F_LOCALITY : F_NONE;
		case 9:
			return KEY_IS(k, len, "longitude") ? F_LONGITUDE : F_NONE;
		case 11:
			switch (k[0])
			{
				case 'i':
					return KEY_IS(k, len, "iso_country") ? F_ISO_COUNTRY : F_NONE;
				case 'p':
					return KEY_IS(k, len, "postal_code") ? F_POSTAL_CODE : F_NONE;
				case 'r':
					return KEY_IS(k, len, "rate_center") ? F_RATE_CENTER : F_NONE;
			}
			return F_NONE;
		case 12:
			if (k[0] == 'p')
				return KEY_IS(k, len, "phone_number") ? F_PHONE_NUMBER : F_NONE;
			return KEY_IS(k, len, "capabilities") ? F_CAPABILITIES : F_NONE;
		case 13:
			return KEY_IS(k, len, "friendly_name") ? F_FRIENDLY_NAME : F_NONE;
		case 20:
			return KEY_IS(k, len, "address_requirements") ? F_ADDRESS_REQUIREMENTS : F_NONE;
	}
	return F_NONE;
}

/* The F_* of a capability key (reply.c's rule: any case). */
static int
capability_field(const char *k, size_t len)
{
	ReplyCapability c = reply_capability(k, len);

	return c == CAP_NONE ? F_NONE : F_VOICE + (int) c;
}

typedef struct SearchParse
{
	int			depth;			/* objects and arrays open */
	bool		list_key;		/* the last top-level key was available_phone_numbers */
	bool		in_list;		/* inside that array */
	bool		in_caps;		/* inside an element's capabilities */
	int			field;			/* F_* of the current key */
	char	   *val[NFIELDS];	/* this element's scalars (NULL: absent) */
	JsonTokenType type[NFIELDS];
	/* what each row needs besides the reply */
	ReturnSetInfo *rsinfo;
	Datum		number_type;	/* text, the same for every row */
	Datum		iso;			/* text: the country asked for */
	Datum		currency;		/* text, or 0 when the price has none */
	const CustomerPrice *price;
	/* what seen_numbers.c remembers of each row */
	const char *number_type_c;
	const char *iso_c;
	TimestampTz seen_at;
} SearchParse;

/* Field f as a C string, NULL when absent or JSON null. */
static const char *
text_cstring(SearchParse *p, int f)
{
	return (p->val[f] == NULL || p->type[f] == JSON_TOKEN_NULL) ? NULL : p->val[f];
}

static Datum
text_value(SearchParse *p, int f, bool *isnull)
{
	char	   *v = p->val[f];

	*isnull = (v == NULL || p->type[f] == JSON_TOKEN_NULL);
	return *isnull ? (Datum) 0 : CStringGetTextDatum(v);
}

static Datum
numeric_value(SearchParse *p, int f, bool *isnull)
{
	char	   *v = p->val[f];

	*isnull = !(v && (p->type[f] == JSON_TOKEN_NUMBER ||
					  (p->type[f] == JSON_TOKEN_STRING && reply_is_decimal(v, (int) strlen(v)))));
	if (*isnull)
		return (Datum) 0;
	return DirectFunctionCall3(numeric_in, CStringGetDatum(v),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

static Datum
bool_value(SearchParse *p, int f, bool *isnull)
{
	char	   *v = p->val[f];

	*isnull = false;
	if (v && (p->type[f] == JSON_TOKEN_TRUE ||
			  (p->type[f] == JSON_TOKEN_STRING && reply_boolean_string(v, (int) strlen(v)) == 1)))
		return BoolGetDatum(true);
	if (v && (p->type[f] == JSON_TOKEN_FALSE ||
			  (p->type[f] == JSON_TOKEN_STRING && reply_boolean_string(v, (int) strlen(v)) == 0)))
		return BoolGetDatum(false);
	*isnull = true;
	return (Datum) 0;
}

/* One element of available_phone_numbers is complete: emit its row. */
static void
emit_row(SearchParse *p)
{
	Datum		values[SEARCH_NCOLS];
	bool		nulls[SEARCH_NCOLS] = {0};

	values[COL_PHONE_NUMBER] = text_value(p, F_PHONE_NUMBER, &nulls[COL_PHONE_NUMBER]);
	values[COL_FRIENDLY_NAME] = text_value(p, F_FRIENDLY_NAME, &nulls[COL_FRIENDLY_NAME]);
	values[COL_NUMBER_TYPE] = p->number_type;
	values[COL_ISO_COUNTRY] = text_value(p, F_ISO_COUNTRY, &nulls[COL_ISO_COUNTRY]);
	if (nulls[COL_ISO_COUNTRY])
	{
		values[COL_ISO_COUNTRY] = p->iso;
		nulls[COL_ISO_COUNTRY] = false;
	}
	values[COL_REGION] = text_value(p, F_REGION, &nulls[COL_REGION]);
	values[COL_LOCALITY] = text_value(p, F_LOCALITY, &nulls[COL_LOCALITY]);
	values[COL_POSTAL_CODE] = text_value(p, F_POSTAL_CODE, &nulls[COL_POSTAL_CODE]);
	values[COL_RATE_CENTER] = text_value(p, F_RATE_CENTER, &nulls[COL_RATE_CENTER]);
	values[COL_LATA] = text_value(p, F_LATA, &nulls[COL_LATA]);
	values[COL_LATITUDE] = numeric_value(p, F_LATITUDE, &nulls[COL_LATITUDE]);
	values[COL_LONGITUDE] = numeric_value(p, F_LONGITUDE, &nulls[COL_LONGITUDE]);
	values[COL_ADDRESS_REQUIREMENTS] = text_value(p, F_ADDRESS_REQUIREMENTS,
												  &nulls[COL_ADDRESS_REQUIREMENTS]);
	values[COL_BETA] = bool_value(p, F_BETA, &nulls[COL_BETA]);
	values[COL_VOICE] = bool_value(p, F_VOICE, &nulls[COL_VOICE]);
	values[COL_SMS] = bool_value(p, F_SMS, &nulls[COL_SMS]);
	values[COL_MMS] = bool_value(p, F_MMS, &nulls[COL_MMS]);
	values[COL_FAX] = bool_value(p, F_FAX, &nulls[COL_FAX]);
	values[COL_SETUP_PRICE] = p->price->setup_price;
	nulls[COL_SETUP_PRICE] = !p->price->found;
	values[COL_MONTHLY_PRICE] = p->price->monthly_price;
	nulls[COL_MONTHLY_PRICE] = !p->price->found;
	values[COL_CURRENCY] = p->currency;
	nulls[COL_CURRENCY] = p->currency == (Datum) 0;

	tuplestore_putvalues(p->rsinfo->setResult, p->rsinfo->setDesc, values, nulls);

	/* a purchase of it soon takes this instead of asking Twilio again */
	seen_numbers_remember(text_cstring(p, F_PHONE_NUMBER),
						  text_cstring(p, F_ISO_COUNTRY) ? text_cstring(p, F_ISO_COUNTRY) : p->iso_c,
						  p->number_type_c, text_cstring(p, F_ADDRESS_REQUIREMENTS),
						  text_cstring(p, F_LOCALITY), text_cstring(p, F_REGION), p->seen_at);
}

/*
 * Depths: 1 the reply object, 2 the available_phone_numbers array, 3 one
 * element, 4 its capabilities (or any other nested value, which we skip).
 */
static TN_JSON_ACTION
sp_object_start(void *state)
{
	SearchParse *p = state;

	p->depth++;
	if (p->in_list && p->depth == 3)
	{
		memset(p->val, 0, sizeof(p->val));
		p->field = F_NONE;
	}
	else if (p->in_list && p->depth == 4 && p->field == F_CAPABILITIES)
		p->in_caps = true;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
sp_object_end(void *state)
{
	SearchParse *p = state;

	if (p->in_list && p->depth == 3)
		emit_row(p);
	else if (p->in_list && p->depth == 4)
		p->in_caps = false;
	p->depth--;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
sp_array_start(void *state)
{
	SearchParse *p = state;

	p->depth++;
	if (p->depth == 2 && p->list_key)
		p->in_list = true;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
sp_array_end(void *state)
{
	SearchParse *p = state;

	if (p->depth == 2)
		p->in_list = false;
	p->depth--;
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
sp_field_start(void *state, char *fname, bool isnull)
{
	SearchParse *p = state;

	if (p->depth == 1)
		p->list_key = KEY_IS(fname, strlen(fname), "available_phone_numbers");
	else if (p->in_list && p->depth == 3)
		p->field = element_field(fname, strlen(fname));
	else if (p->in_caps && p->depth == 4)
		p->field = capability_field(fname, strlen(fname));
	TN_JSON_ACTION_DONE;
}

static TN_JSON_ACTION
sp_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SearchParse *p = state;

	/* a scalar directly under an element key, or under a capability key */
	if (p->in_list && p->field >= 0 && p->field < NFIELDS &&
		((p->depth == 3 && p->field < F_VOICE) || (p->depth == 4 && p->in_caps)))
	{
		p->val[p->field] = token;
		p->type[p->field] = tokentype;
	}
	TN_JSON_ACTION_DONE;
}

/*
 * Parse a search reply (body of len bytes) into rows of rsinfo's tuplestore,
 * each with the number type and the customer's price.  Returns false if the
 * body is not valid JSON (the rows before the damage are already out).
 */
bool
search_reply_to_rows(char *body, size_t len, ReturnSetInfo *rsinfo,
					 const char *number_type, const char *iso, const CustomerPrice *price)
{
	SearchParse state = {0};
	JsonSemAction sem = {0};
	JsonLexContext *lex;

	state.rsinfo = rsinfo;
	state.number_type = CStringGetTextDatum(number_type);
	state.iso = CStringGetTextDatum(iso);
	state.currency = price->found && price->currency ? CStringGetTextDatum(price->currency) : (Datum) 0;
	state.price = price;
	state.field = F_NONE;
	state.number_type_c = number_type;
	state.iso_c = iso;
	state.seen_at = GetCurrentTimestamp();

	sem.semstate = &state;
	sem.object_start = sp_object_start;
	sem.object_end = sp_object_end;
	sem.array_start = sp_array_start;
	sem.array_end = sp_array_end;
	sem.object_field_start = sp_field_start;
	sem.scalar = sp_scalar;

	lex = tn_json_lexer(body, (int) len, true);
	return pg_parse_json(lex, &sem) == JSON_SUCCESS;
}
