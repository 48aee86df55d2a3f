/*
 * config.h — a number's configuration, as purchase and update take it (config.c).
 */
#ifndef TWILIO_NUMBERS_CONFIG_H
#define TWILIO_NUMBERS_CONFIG_H

#include "postgres.h"
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

extern void config_read(FunctionCallInfo fcinfo, int first, NumberConfig *cfg);
extern void config_form(const NumberConfig *cfg, StringInfo form);
extern void config_values(const NumberConfig *cfg, const char **values);

#endif							/* TWILIO_NUMBERS_CONFIG_H */
