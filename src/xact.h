/*
 * xact.h — transaction callbacks (memory only) (xact.c).
 */
#ifndef TWILIO_NUMBERS_XACT_H
#define TWILIO_NUMBERS_XACT_H

#include "postgres.h"
#include "nodes/pg_list.h"

extern void xact_reserve(int n);
extern void xact_track_intent(int slot, bool creation);
extern void xact_wake_worker_at_commit(void);
extern List *xact_rolled_back_others(int kind, int64 number_id);

#endif							/* TWILIO_NUMBERS_XACT_H */
