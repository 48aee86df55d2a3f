/*
 * reconcile.h — the database and Twilio compared (reconcile.c).
 */
#ifndef TWILIO_NUMBERS_RECONCILE_H
#define TWILIO_NUMBERS_RECONCILE_H

#include "postgres.h"

extern uint64 reconcile_in_worker(char **unreachable);

#endif							/* TWILIO_NUMBERS_RECONCILE_H */
