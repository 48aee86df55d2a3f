/*
 * calllog.h — the Twilio call log (calllog.c).
 */
#ifndef TWILIO_NUMBERS_CALLLOG_H
#define TWILIO_NUMBERS_CALLLOG_H

#include "postgres.h"

extern Size calllog_shmem_size(void);
extern void calllog_shmem_init(void);
extern void calllog_record(const char *method, const char *url, long status, int twilio_code, double ms,
						   const char *error);

#endif							/* TWILIO_NUMBERS_CALLLOG_H */
