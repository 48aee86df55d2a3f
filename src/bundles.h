/*
 * bundles.h — regulations and customers' regulatory bundles (bundles.c).
 */
#ifndef TWILIO_NUMBERS_BUNDLES_H
#define TWILIO_NUMBERS_BUNDLES_H

#include "postgres.h"

#include "queue.h"

extern char *bundles_pick(int64 account_id, const char *twilio_account_sid, const char *phone,
						  const char *iso, const char *type);
extern char *bundles_clone_to(const char *bundle_sid, int64 to_id, const char *to_sid, const char *iso,
							  const char *type);
extern JobOutcome bundle_poll_job(const Job *job, char **error, long *again_ms);

#endif							/* TWILIO_NUMBERS_BUNDLES_H */
