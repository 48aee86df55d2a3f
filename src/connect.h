/*
 * connect.h — the background processes' connection to twilio_numbers.database (connect.c).
 */
#ifndef TWILIO_NUMBERS_CONNECT_H
#define TWILIO_NUMBERS_CONNECT_H

#include "postgres.h"

/* which background process connects */
#define CONNECT_WORKER		0
#define CONNECT_RECORDER	1

extern Size connect_shmem_size(void);
extern void connect_shmem_init(void);
extern void connect_to_database(int which, const char *who);

#endif							/* TWILIO_NUMBERS_CONNECT_H */
