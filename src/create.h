/*
 * create.h — creating a number or an order at Twilio exactly once (create.c).
 */
#ifndef TWILIO_NUMBERS_CREATE_H
#define TWILIO_NUMBERS_CREATE_H

#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "change_kinds.h"
#include "config.h"
#include "twilio.h"

typedef struct Creation
{
	const ChangeKind *kind;		/* what is created: its look-up after a lost reply */
	int			slot;			/* the intent; its attempt is recorded */
	const char *url;			/* POST here */
	const char *form;
	const char *what;			/* names the request in errors: "buy +14155550100" */
	const char *phone;
	const char *twilio_account_sid; /* the account it is created in */
	bool		post_again;		/* POST again after a look-up that found nothing */
} Creation;

/*
 * An attempt records which configuration fields (config.h's config_fields) it
 * sent and their fingerprint, so that a look-up can tell what it created from
 * what someone else did.
 */
extern void create_fingerprint(const char *const *values, uint16 *mask, char *md5);

/*
 * The sequence every creation follows (purchases and hosted orders):
 * create_require_free before anything, create_reserve (the intents, held by
 * the transaction), then create_all (the attempts committed, one POST each —
 * all at once when there are several — then record(resources, arg) writes
 * the rows while the recorder commits the SIDs).
 */
extern void create_require_free(char **phones, int n, bool orders_too);
extern int64 create_reserve(int kind, int64 account_id, int n, char **phones, const int64 *holds, int *slots);
typedef void (*CreateRecord) (char **resources, void *arg);
extern void create_all(const Creation *c, int n, const NumberConfig *cfg, char **resources,
					   CreateRecord record, void *arg);

extern bool create_made_by_attempt(JsonbContainer *r, const char *phone, const char *twilio_account_sid,
							   TimestampTz started, TimestampTz deadline, Datum fields,
							   const char *md5, int except_slot);

#endif							/* TWILIO_NUMBERS_CREATE_H */
