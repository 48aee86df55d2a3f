/*
 * config.c — a number's configuration: the arguments numbers_purchase and
 * numbers_update share (friendly name, webhooks, trunk, regulatory and E911
 * SIDs), their checks before any request, and the form fields Twilio takes.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

#include "config.h"
#include "create.h"
#include "twilio.h"
#include "validate.h"

/* Read and check the configuration arguments, starting at argument first. */
void
config_read(FunctionCallInfo fcinfo, int first, NumberConfig *cfg)
{
	cfg->friendly_name = validate_text_arg(fcinfo, first + 0);
	cfg->voice_url = validate_text_arg(fcinfo, first + 1);
	cfg->voice_method = validate_text_arg(fcinfo, first + 2);
	cfg->sms_url = validate_text_arg(fcinfo, first + 3);
	cfg->sms_method = validate_text_arg(fcinfo, first + 4);
	cfg->status_callback = validate_text_arg(fcinfo, first + 5);
	cfg->trunk_sid = validate_text_arg(fcinfo, first + 6);
	cfg->address_sid = validate_text_arg(fcinfo, first + 7);
	cfg->bundle_sid = validate_text_arg(fcinfo, first + 8);
	cfg->identity_sid = validate_text_arg(fcinfo, first + 9);
	cfg->emergency_address_sid = validate_text_arg(fcinfo, first + 10);

	validate_friendly_name(cfg->friendly_name);
	validate_url("voice_url", cfg->voice_url);
	validate_url("sms_url", cfg->sms_url);
	validate_url("status_callback", cfg->status_callback);
	validate_http_method("voice_method", cfg->voice_method);
	validate_http_method("sms_method", cfg->sms_method);
	validate_sid("trunk_sid", cfg->trunk_sid, "TK");
	validate_sid("address_sid", cfg->address_sid, "AD");
	validate_sid("bundle_sid", cfg->bundle_sid, "BU");
	validate_sid("identity_sid", cfg->identity_sid, "RI");
	validate_sid("emergency_address_sid", cfg->emergency_address_sid, "AD");
}

/* Twilio's form fields for a configuration; NULL leaves a field alone. */
void
config_form(const NumberConfig *cfg, StringInfo form)
{
	twilio_form_add(form, "FriendlyName", cfg->friendly_name);
	twilio_form_add(form, "VoiceUrl", cfg->voice_url);
	twilio_form_add(form, "VoiceMethod", cfg->voice_method);
	twilio_form_add(form, "SmsUrl", cfg->sms_url);
	twilio_form_add(form, "SmsMethod", cfg->sms_method);
	twilio_form_add(form, "StatusCallback", cfg->status_callback);
	twilio_form_add(form, "TrunkSid", cfg->trunk_sid);
	twilio_form_add(form, "AddressSid", cfg->address_sid);
	twilio_form_add(form, "BundleSid", cfg->bundle_sid);
	twilio_form_add(form, "IdentitySid", cfg->identity_sid);
	if (cfg->emergency_address_sid)
	{
		/* an emergency address turns E911 on; '' turns it off */
		twilio_form_add(form, "EmergencyAddressSid", cfg->emergency_address_sid);
		twilio_form_add(form, "EmergencyStatus",
						cfg->emergency_address_sid[0] ? "Active" : "Inactive");
	}
}

/* The fields a purchase sends, in the order of create_config_fields. */
void
config_values(const NumberConfig *cfg, const char **values)
{
	const char *v[CREATE_CONFIG_FIELDS] = {
		cfg->friendly_name, cfg->voice_url, cfg->voice_method, cfg->sms_url, cfg->sms_method,
		cfg->status_callback, cfg->trunk_sid, cfg->address_sid, cfg->bundle_sid, cfg->identity_sid,
		cfg->emergency_address_sid,
	};

	memcpy(values, v, sizeof(v));
}
