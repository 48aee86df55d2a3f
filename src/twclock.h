/*
 * twclock.h — Twilio's clock as this database sees it (twclock.c).
 */
#ifndef TWILIO_NUMBERS_TWCLOCK_H
#define TWILIO_NUMBERS_TWCLOCK_H

#include "postgres.h"

#include <time.h>

#include "utils/timestamp.h"

extern Size twclock_shmem_size(void);
extern void twclock_shmem_init(void);
extern void twclock_note(time_t twilio_date, TimestampTz sent_at, TimestampTz received_at);
extern bool twclock_offset(int64 *offset_us, int64 *uncertainty_us);
extern void twclock_report_skew(void);

#endif							/* TWILIO_NUMBERS_TWCLOCK_H */
