/*
 * incarnation.h — whether this database is the incarnation that acts at Twilio (incarnation.c).
 */
#ifndef TWILIO_NUMBERS_INCARNATION_H
#define TWILIO_NUMBERS_INCARNATION_H

#include "postgres.h"

typedef enum IncarnationStatus
{
	INCARNATION_LIVE,			/* acts at Twilio */
	INCARNATION_HELD,			/* a copy: GETs only until numbers_make_live() */
	INCARNATION_DETACHED		/* a copy detached for good (numbers_detach()) */
} IncarnationStatus;

extern IncarnationStatus incarnation_status(void);
extern void incarnation_require_live(void);
extern void incarnation_require_writes(void);
extern const char *incarnation_describe(void);

#endif							/* TWILIO_NUMBERS_INCARNATION_H */
