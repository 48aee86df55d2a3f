/*
 * shmem.h — the background worker's shared state: its latch, its report,
 * the checks of functions that need it (shmem.c).
 */
#ifndef TWILIO_NUMBERS_SHMEM_H
#define TWILIO_NUMBERS_SHMEM_H

#include "postgres.h"
#include "utils/timestamp.h"

/* The locks of the "twilio_numbers" tranche (module.c requests TN_LOCKS). */
#define TN_LOCK_WORKER	0		/* shmem.c */
#define TN_LOCK_INTENTS	1		/* intents.c */
#define TN_LOCKS		2

/* What the worker reports about itself (worker_status). */
typedef struct WorkerStats
{
	TimestampTz started_at;
	int64		restarts;		/* starts since the cluster started */
	TimestampTz last_reconcile_at;
	int64		last_reconcile_findings;
	TimestampTz last_billing_at;
	int64		jobs_done;
	TimestampTz last_error_at;
	char		last_error[256];
} WorkerStats;

#define WORKER_NOTE_RECONCILE	1
#define WORKER_NOTE_JOB_DONE	2
#define WORKER_NOTE_JOB_FAILED	3
#define WORKER_NOTE_BILLING		4
#define WORKER_NOTE_ERROR		5

extern void shmem_worker_note(int what, int64 count, const char *error);
extern Size shmem_size(void);
extern void shmem_init(void);
extern void shmem_require_worker(void);
extern void shmem_worker_register(void);
extern void shmem_worker_unregister(void);
extern void shmem_wake_worker(void);
extern void shmem_require_worker_to_queue(void);
extern bool shmem_worker_stats(WorkerStats *stats, int *pid);

#endif							/* TWILIO_NUMBERS_SHMEM_H */
