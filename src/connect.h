/*
 * connect.h — the background processes' connection to twilio_numbers.database (connect.c).
 */
#ifndef TWILIO_NUMBERS_CONNECT_H
#define TWILIO_NUMBERS_CONNECT_H

#include "postgres.h"

/* which background process connects */
#define CONNECT_WORKER		0
#define CONNECT_RECORDER	1
#define CONNECT_RUNNER		2	/* + the runner's index (twilio_numbers.queue_workers, at most 64) */
#define CONNECT_SLOTS		(2 + 64)

extern Size connect_shmem_size(void);
extern void connect_shmem_init(void);
extern void connect_to_database(int which, const char *who);
extern void connect_reload_if_pending(void);
extern int	connect_outage_get(void);
extern int	connect_outage_exchange(int episode);

#endif							/* TWILIO_NUMBERS_CONNECT_H */
