/*
 * config.c — a number's configuration: the arguments numbers_purchase and
 * numbers_update share (friendly name, webhooks, trunk, regulatory and E911
 * SIDs), their checks before any request, and the form fields Twilio takes,
 * all from one table of fields.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "config.h"
#include "twilio.h"
#include "validate.h"

#define FIELD(name, form, check, prefix) \
	{#name, form, check, prefix, offsetof(NumberConfig, name)}

/* In the order of the SQL functions' arguments (purchase and update alike). */
const ConfigField config_fields[CONFIG_NFIELDS] = {
	FIELD(friendly_name, "FriendlyName", CONFIG_NAME, NULL),
	FIELD(voice_url, "VoiceUrl", CONFIG_URL, NULL),
	FIELD(voice_method, "VoiceMethod", CONFIG_METHOD, NULL),
	FIELD(sms_url, "SmsUrl", CONFIG_URL, NULL),
	FIELD(sms_method, "SmsMethod", CONFIG_METHOD, NULL),
	FIELD(status_callback, "StatusCallback", CONFIG_URL, NULL),
	FIELD(trunk_sid, "TrunkSid", CONFIG_SID, "TK"),
	FIELD(address_sid, "AddressSid", CONFIG_SID, "AD"),
	FIELD(bundle_sid, "BundleSid", CONFIG_SID, "BU"),
	FIELD(identity_sid, "IdentitySid", CONFIG_SID, "RI"),
	FIELD(emergency_address_sid, "EmergencyAddressSid", CONFIG_SID, "AD"),
};

#define FIELD_VALUE(cfg, f) (*(char **) ((char *) (cfg) + (f)->offset))

/* Read and check the configuration arguments, starting at argument first. */
void
config_read(FunctionCallInfo fcinfo, int first, NumberConfig *cfg)
{
	for (int i = 0; i < CONFIG_NFIELDS; i++)
		FIELD_VALUE(cfg, &config_fields[i]) = validate_text_arg(fcinfo, first + i);

	for (int i = 0; i < CONFIG_NFIELDS; i++)
	{
		const ConfigField *f = &config_fields[i];
		const char *v = FIELD_VALUE(cfg, f);

		switch (f->check)
		{
			case CONFIG_NAME:
				validate_friendly_name(v);
				break;
			case CONFIG_URL:
				validate_url(f->name, v);
				break;
			case CONFIG_METHOD:
				validate_http_method(f->name, v);
				break;
			case CONFIG_SID:
				validate_sid(f->name, v, f->sid_prefix);
				break;
		}
	}
}

/* Twilio's form fields for a configuration; NULL leaves a field alone. */
void
config_form(const NumberConfig *cfg, StringInfo form)
{
	for (int i = 0; i < CONFIG_NFIELDS; i++)
		twilio_form_add(form, config_fields[i].form, FIELD_VALUE(cfg, &config_fields[i]));

	/* an emergency address turns E911 on; '' turns it off */
	if (cfg->emergency_address_sid)
		twilio_form_add(form, "EmergencyStatus",
						cfg->emergency_address_sid[0] ? "Active" : "Inactive");
}

/* The values of a configuration, in the order of config_fields. */
void
config_values(const NumberConfig *cfg, const char **values)
{
	for (int i = 0; i < CONFIG_NFIELDS; i++)
		values[i] = FIELD_VALUE(cfg, &config_fields[i]);
}

/* The fields of a mask as a text[] (for SQL), in config_fields' order. */
Datum
config_fields_array(uint16 mask)
{
	Datum		elems[CONFIG_NFIELDS];
	int			n = 0;

	for (int i = 0; i < CONFIG_NFIELDS; i++)
		if (mask & (1 << i))
			elems[n++] = CStringGetTextDatum(config_fields[i].name);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
