/*
 * reply.c — reading Twilio's replies: the rules for the forms Twilio really
 * sends beside the forms its OpenAPI files describe, and jsonb access that
 * applies them.
 *
 * Twilio's wire differs from its OpenAPI files in ways a parser meets:
 * coordinates and prices are decimal strings ("37.773972") where the spec
 * says numbers, booleans sometimes strings ("true"), capability keys upper
 * case on AvailablePhoneNumbers ("SMS") and lower case elsewhere.  Both forms
 * are accepted, by the jsonb readers below (every reply but a search's) and
 * by search_reply.c's streaming parser alike, through the same three rules.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "reply.h"

/* ---- the wire forms' rules ------------------------------------------------ */

/* Is s a plain decimal number (what numeric_in accepts, minus NaN/Inf)? */
bool
reply_is_decimal(const char *s, int len)
{
	int			i = 0;
	bool		digits = false;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits = true;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits = true;
	if (digits && i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		if (!(i < len && s[i] >= '0' && s[i] <= '9'))
			return false;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return digits && i == len;
}

/* 1 for "true", 0 for "false" (in any case), -1 for any other string. */
int
reply_boolean_string(const char *s, int len)
{
	if (len == 4 && pg_strncasecmp(s, "true", 4) == 0)
		return 1;
	if (len == 5 && pg_strncasecmp(s, "false", 5) == 0)
		return 0;
	return -1;
}

/* The capability a key names, in any case ("SMS" on the wire, "sms" in the spec). */
ReplyCapability
reply_capability(const char *k, size_t len)
{
	if (len == 5)
		return pg_strncasecmp(k, "voice", 5) == 0 ? CAP_VOICE : CAP_NONE;
	if (len != 3)
		return CAP_NONE;
	switch (k[0])
	{
		case 's':
		case 'S':
			return pg_strncasecmp(k, "sms", 3) == 0 ? CAP_SMS : CAP_NONE;
		case 'm':
		case 'M':
			return pg_strncasecmp(k, "mms", 3) == 0 ? CAP_MMS : CAP_NONE;
		case 'f':
		case 'F':
			return pg_strncasecmp(k, "fax", 3) == 0 ? CAP_FAX : CAP_NONE;
	}
	return CAP_NONE;
}

/* ---- jsonb access ------------------------------------------------------ */

static JsonbValue *
jb_get(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

/* obj.key as an object container, or NULL */
JsonbContainer *
jb_object(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = jb_get(obj, key, &buf);

	if (v && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		return v->val.binary.data;
	return NULL;
}

/* obj.key as an array container, or NULL */
JsonbContainer *
jb_array(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = jb_get(obj, key, &buf);

	if (v && v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
		return v->val.binary.data;
	return NULL;
}

int
jb_array_size(JsonbContainer *arr)
{
	return arr ? (int) JsonContainerSize(arr) : 0;
}

/* arr[i] if it is an object, else NULL */
JsonbContainer *
jb_array_object(JsonbContainer *arr, int i)
{
	JsonbValue *v = getIthJsonbValueFromContainer(arr, (uint32) i);

	if (v && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		return v->val.binary.data;
	return NULL;
}

/* obj.key as text: strings as they are, numbers and booleans printed */
char *
jb_text(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = jb_get(obj, key, &buf);

	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/* obj.key as a boolean; Twilio sends JSON booleans, "true"/"false" accepted */
bool
jb_bool(JsonbContainer *obj, const char *key, bool *isnull)
{
	JsonbValue	buf;
	JsonbValue *v = jb_get(obj, key, &buf);

	*isnull = false;
	if (v && v->type == jbvBool)
		return v->val.boolean;
	if (v && v->type == jbvString)
	{
		int			b = reply_boolean_string(v->val.string.val, v->val.string.len);

		if (b >= 0)
			return b == 1;
	}
	*isnull = true;
	return false;
}

/* obj.key as numeric: a JSON number or a decimal string ("37.773972") */
Datum
jb_numeric(JsonbContainer *obj, const char *key, bool *isnull)
{
	JsonbValue	buf;
	JsonbValue *v = jb_get(obj, key, &buf);

	*isnull = false;
	if (v && v->type == jbvNumeric)
		return NumericGetDatum(v->val.numeric);
	if (v && v->type == jbvString && reply_is_decimal(v->val.string.val, v->val.string.len))
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

		return DirectFunctionCall3(numeric_in, CStringGetDatum(s),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	*isnull = true;
	return (Datum) 0;
}
