/*
 * runners.c — where the queue runners (worker.c's runner_main, a pool of
 * twilio_numbers.queue_workers background workers) can be woken: one latch
 * per runner in shared memory.
 *
 * A transaction that queued work wakes them all at commit (shmem.c's
 * shmem_wake_worker), and so does a runner that finished a job (a job of the
 * same number may have waited for it).  Every runner then tries to claim a
 * job; those that find none sleep again.  Waking is memory only: safe in a
 * transaction callback.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/shmem.h"

#include "runners.h"
#include "settings.h"

typedef struct RunnersShared
{
	int			n;				/* queue_workers at start-up */
	Latch	   *latches[FLEXIBLE_ARRAY_MEMBER];	/* NULL: that runner is not running */
} RunnersShared;

static RunnersShared *runners = NULL;

Size
runners_shmem_size(void)
{
	return add_size(offsetof(RunnersShared, latches), mul_size(sizeof(Latch *), tn_queue_workers));
}

void
runners_shmem_init(void)
{
	bool		found;

	runners = ShmemInitStruct("twilio_numbers queue runners", runners_shmem_size(), &found);
	if (!found)
	{
		memset(runners, 0, runners_shmem_size());
		runners->n = tn_queue_workers;
	}
}

/* A runner says where to wake it (a pointer store: atomic enough for a wake-up). */
void
runners_register(int index)
{
	if (runners != NULL && index >= 0 && index < runners->n)
		runners->latches[index] = MyLatch;
}

void
runners_unregister(int index)
{
	if (runners != NULL && index >= 0 && index < runners->n && runners->latches[index] == MyLatch)
		runners->latches[index] = NULL;
}

/* Wake every runner; a stale pointer at worst wakes some other process. */
void
runners_wake(void)
{
	if (runners == NULL)
		return;
	for (int i = 0; i < runners->n; i++)
	{
		Latch	   *latch = runners->latches[i];

		if (latch)
			SetLatch(latch);
	}
}
