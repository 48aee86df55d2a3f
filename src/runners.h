/*
 * runners.h — the queue runners' latches in shared memory (runners.c).
 */
#ifndef TWILIO_NUMBERS_RUNNERS_H
#define TWILIO_NUMBERS_RUNNERS_H

#include "postgres.h"

extern Size runners_shmem_size(void);
extern void runners_shmem_init(void);
extern void runners_register(int index);
extern void runners_unregister(int index);
extern void runners_wake(void);

#endif							/* TWILIO_NUMBERS_RUNNERS_H */
