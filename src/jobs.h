/*
 * jobs.h — what the worker does for each kind of queued job (jobs.c).
 */
#ifndef TWILIO_NUMBERS_JOBS_H
#define TWILIO_NUMBERS_JOBS_H

#include "postgres.h"

#include "queue.h"

extern JobOutcome jobs_run(const Job *job, char **error, long *again_ms);

#endif							/* TWILIO_NUMBERS_JOBS_H */
