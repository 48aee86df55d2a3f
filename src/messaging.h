/*
 * messaging.h — Messaging Service assignment, its re-sync and reconcile,
 * and emergency registrations cleared before a release (messaging.c).
 */
#ifndef TWILIO_NUMBERS_MESSAGING_H
#define TWILIO_NUMBERS_MESSAGING_H

#include "postgres.h"
#include "executor/spi.h"

#include "queue.h"
#include "twilio.h"

extern JobOutcome messaging_resync_job(const Job *job, char **error, long *again_ms);
extern SPITupleTable *messaging_reconcile(uint64 *n);
extern bool emergency_clear_for_release(const char *account_sid, const char *sid, bool *cleared, char **error);

#endif							/* TWILIO_NUMBERS_MESSAGING_H */
