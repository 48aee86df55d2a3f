/*
 * config.h — a number's configuration, as purchase and update take it (config.c).
 */
#ifndef TWILIO_NUMBERS_CONFIG_H
#define TWILIO_NUMBERS_CONFIG_H

#include "postgres.h"

#include <stddef.h>

#include "fmgr.h"
#include "lib/stringinfo.h"

/* The configuration arguments shared by purchase and update (args 2..12). */
typedef struct NumberConfig
{
	char	   *friendly_name;
	char	   *voice_url;
	char	   *voice_method;
	char	   *sms_url;
	char	   *sms_method;
	char	   *status_callback;
	char	   *trunk_sid;
	char	   *address_sid;
	char	   *bundle_sid;
	char	   *identity_sid;
	char	   *emergency_address_sid;
} NumberConfig;

/*
 * The configuration fields, one entry each: the SQL argument's name (also the
 * owned_numbers column and the name an attempt records), Twilio's form field,
 * and the check it gets before any request.  Reading, checking, building
 * Twilio's form and an attempt's fingerprint all loop over this table.
 */
typedef enum ConfigCheck
{
	CONFIG_NAME,				/* a friendly name */
	CONFIG_URL,					/* a webhook URL */
	CONFIG_METHOD,				/* GET or POST */
	CONFIG_SID					/* a Twilio SID with the entry's prefix */
} ConfigCheck;

typedef struct ConfigField
{
	const char *name;			/* friendly_name: the argument and the column */
	const char *form;			/* FriendlyName: Twilio's form field */
	ConfigCheck check;
	const char *sid_prefix;		/* CONFIG_SID: "TK", "AD", ... */
	size_t		offset;			/* of its value in NumberConfig */
} ConfigField;

#define CONFIG_NFIELDS 11
extern const ConfigField config_fields[CONFIG_NFIELDS];

extern void config_read(FunctionCallInfo fcinfo, int first, NumberConfig *cfg);
extern void config_form(const NumberConfig *cfg, StringInfo form);
extern void config_values(const NumberConfig *cfg, const char **values);
extern Datum config_fields_array(uint16 mask);

#endif							/* TWILIO_NUMBERS_CONFIG_H */
