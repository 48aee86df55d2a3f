/*
 * seen_numbers.h — numbers this session's searches saw (seen_numbers.c):
 * what numbers_search returned, taken by numbers_purchase instead of
 * looking each number up in Twilio's inventory again.
 */
#ifndef TWILIO_NUMBERS_SEEN_NUMBERS_H
#define TWILIO_NUMBERS_SEEN_NUMBERS_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* What a search told us about one number. */
typedef struct SeenNumber
{
	const char *iso;
	const char *type;
	const char *address_requirements;	/* NULL: the search did not say */
	const char *locality;		/* NULL: none */
	const char *region;			/* NULL: none */
} SeenNumber;

extern void seen_numbers_search_start(void);
extern void seen_numbers_remember(const char *phone, const char *iso, const char *type,
								  const char *address_requirements, const char *locality,
								  const char *region, TimestampTz seen_at);
extern bool seen_numbers_take(const char *phone, SeenNumber *seen);

#endif							/* TWILIO_NUMBERS_SEEN_NUMBERS_H */
