/*
 * validate.h — argument checks done before any HTTP call (validate.c).
 */
#ifndef TWILIO_NUMBERS_VALIDATE_H
#define TWILIO_NUMBERS_VALIDATE_H

#include "postgres.h"
#include "fmgr.h"

extern char *validate_country(const char *arg, const char *value);
extern const char *validate_number_type(const char *value);
extern void validate_e164(const char *arg, const char *value);
extern void validate_contains(const char *value);
extern void validate_url(const char *arg, const char *value);
extern void validate_http_method(const char *arg, const char *value);
extern void validate_sid(const char *arg, const char *value, const char *prefix);
extern const char *validate_type_path(const char *number_type);
extern const char *validate_type_from_twilio(const char *twilio_type);
extern int	validate_type_count(void);
extern const char *validate_type_name(int i);
extern char *validate_text_arg(FunctionCallInfo fcinfo, int n);
extern int64 validate_account_arg(FunctionCallInfo fcinfo, int n);
extern void validate_friendly_name(const char *value);
extern const char *validate_country_of(const char *phone);
extern const char *validate_nanp_type(const char *phone);

#endif							/* TWILIO_NUMBERS_VALIDATE_H */
