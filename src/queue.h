/*
 * queue.h — the work queue's jobs: what the runners hand jobs.c, and what
 * a job's run comes to.
 */
#ifndef TWILIO_NUMBERS_QUEUE_H
#define TWILIO_NUMBERS_QUEUE_H

#include "postgres.h"
#include "utils/timestamp.h"

typedef struct Job
{
	int64		job_id;
	char	   *kind;
	int64		number_id;		/* 0 when none */
	char	   *phone;
	char	   *sid;
	char	   *account_sid;
	char	   *payload;		/* JSON text */
	int			attempts;
	int64		attempt_id;		/* the purchase attempt it settles, 0 when none */
	TimestampTz created_at;
} Job;

/* What became of a job: done; failed (retried with backoff, counted);
 * or not finished yet (a poll: run again after *again_ms, not a failure). */
typedef enum JobOutcome
{
	JOB_DONE,
	JOB_RETRY,
	JOB_AGAIN
} JobOutcome;

/*
 * The queue's rules are SQL (sql/schema/queue.sql: _queue_claim's urgency
 * order, retries, dead letters); the C that calls them is store.c's
 * (queue_enqueue, queue_close_attempt, queue_live_row_owns,
 * queue_hosted_order_committed, declared in store.h), the release of a
 * number at Twilio release.c's (queue_release_number, release.h).
 */

#endif							/* TWILIO_NUMBERS_QUEUE_H */
