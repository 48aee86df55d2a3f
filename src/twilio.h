/*
 * twilio.h — Twilio's API — URLs, forms, replies, errors (twilio.c).
 */
#ifndef TWILIO_NUMBERS_TWILIO_H
#define TWILIO_NUMBERS_TWILIO_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "compat.h"
#include "http.h"

typedef enum TwilioHost
{
	TWILIO_API,					/* api.twilio.com /2010-04-01 */
	TWILIO_PRICING,				/* pricing.twilio.com /v1 */
	TWILIO_TRUNKING,			/* trunking.twilio.com /v1 */
	TWILIO_NUMBERS,				/* numbers.twilio.com /v2 */
	TWILIO_MESSAGING			/* messaging.twilio.com /v1 */
} TwilioHost;

typedef struct TwilioReply
{
	HttpResult	http;
	Jsonb	   *json;			/* parsed body, NULL when empty */
	int			twilio_code;	/* Twilio's error code, 0 if none */
	char	   *twilio_message; /* Twilio's error message, NULL if none */
} TwilioReply;

/* flags for twilio_request, on top of the HTTP_* ones */
#define TWILIO_NO_ERROR		0x100	/* hand every outcome back to the caller */
#define TWILIO_OK_404		0x200	/* a 404 is an answer, not an error */
#define TWILIO_RAW_BODY		0x400	/* a 2xx body is the caller's to parse */

/*
 * A failure that is Twilio's or the credentials', not a job's: the queue
 * does not count it towards a dead letter (worker.c).
 */
typedef enum TwilioOutage
{
	TWILIO_OUTAGE_NONE,
	TWILIO_OUTAGE_UNREACHABLE,	/* no reply, or a 5xx */
	TWILIO_OUTAGE_AUTH			/* 401/403: the credentials are refused */
} TwilioOutage;
extern TwilioOutage twilio_outage_seen;

extern void twilio_require_credentials(void);
extern char *twilio_url(TwilioHost host, const char *fmt,...) pg_attribute_printf(2, 3);
extern char *twilio_account_url_for(const char *account_sid, const char *fmt,...) pg_attribute_printf(2, 3);
extern char *twilio_json_text(const TwilioReply *reply);
extern void twilio_form_add(StringInfo form, const char *key, const char *value);
extern void twilio_query_add(StringInfo url, const char *key, const char *value);
extern void twilio_request(HttpMethod method, const char *url, const char *form,
						   int flags, const char *what, TwilioReply *reply);
extern void twilio_requests_parallel(HttpParallel *reqs, int n, TwilioReply *replies);
extern void twilio_error_fields(const char *body, int *code, char **message);
pg_noreturn extern void twilio_raise(const TwilioReply *reply, const char *what);
extern List *twilio_owned_by_phone(const char *account_sid, const char *phone, TwilioReply *reply,
								   bool *ok);
extern bool twilio_release_number(const char *account_sid, const char *sid, char **error);
extern char *twilio_describe_failure(const TwilioReply *reply);

extern List *twilio_hosted_orders_by_phone(const char *account_sid, const char *phone, TwilioReply *reply,
										   bool *ok);
extern bool twilio_cancel_hosted_order(const char *account_sid, const char *sid, char **error);

#endif							/* TWILIO_NUMBERS_TWILIO_H */
