/*
 * release.h — a number of ours released at Twilio wherever it is (release.c).
 */
#ifndef TWILIO_NUMBERS_RELEASE_H
#define TWILIO_NUMBERS_RELEASE_H

#include "postgres.h"

/* true when the number (sid) is gone from every managed account; else *error says why */
extern bool queue_release_number(const char *home, const char *sid, char **error);

#endif							/* TWILIO_NUMBERS_RELEASE_H */
