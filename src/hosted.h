/*
 * hosted.h — hosted number orders (hosted.c).
 */
#ifndef TWILIO_NUMBERS_HOSTED_H
#define TWILIO_NUMBERS_HOSTED_H

#include "postgres.h"

#include "queue.h"

extern JobOutcome hosted_poll_job(const Job *job, char **error, long *again_ms);

#endif							/* TWILIO_NUMBERS_HOSTED_H */
