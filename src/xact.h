/*
 * xact.h — transaction callbacks (memory only) (xact.c).
 */
#ifndef TWILIO_NUMBERS_XACT_H
#define TWILIO_NUMBERS_XACT_H

#include "postgres.h"

extern void xact_reserve(int n);
extern void xact_track_intent(int slot, bool creation);
extern void xact_wake_worker_at_commit(void);

#endif							/* TWILIO_NUMBERS_XACT_H */
