/*
 * reply.h — reading Twilio's replies in both wire forms (reply.c).
 */
#ifndef TWILIO_NUMBERS_REPLY_H
#define TWILIO_NUMBERS_REPLY_H

#include "postgres.h"
#include "utils/jsonb.h"

/* The capabilities Twilio lists, in the order of numbers_search's columns. */
typedef enum ReplyCapability
{
	CAP_NONE = -1,
	CAP_VOICE, CAP_SMS, CAP_MMS, CAP_FAX
} ReplyCapability;

extern bool reply_is_decimal(const char *s, int len);
extern int	reply_boolean_string(const char *s, int len);
extern ReplyCapability reply_capability(const char *key, size_t len);

/* jsonb access that accepts both Twilio's wire forms and the spec's */
extern JsonbContainer *jb_object(JsonbContainer *obj, const char *key);
extern JsonbContainer *jb_array(JsonbContainer *obj, const char *key);
extern char *jb_text(JsonbContainer *obj, const char *key);
extern bool jb_bool(JsonbContainer *obj, const char *key, bool *isnull);
extern Datum jb_numeric(JsonbContainer *obj, const char *key, bool *isnull);
extern int	jb_array_size(JsonbContainer *arr);
extern JsonbContainer *jb_array_object(JsonbContainer *arr, int i);

#endif							/* TWILIO_NUMBERS_REPLY_H */
