/*
 * queue.h — the work queue and the facts its jobs go by (queue.c).
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
 * The order queue runners claim jobs in: compensations of rolled-back
 * purchases and hosted orders, releases, re-syncs, polls (the expression of
 * the work_queue_claim index, which it must match), then job_id.
 */
#define QUEUE_PRIORITY_SQL \
	"(CASE kind WHEN 'compensate' THEN 0 WHEN 'hosted_cancel' THEN 0 WHEN 'release' THEN 1 " \
	"WHEN 'resync' THEN 2 WHEN 'messaging_resync' THEN 2 ELSE 3 END)"

/* the advisory-lock class of "a runner works on this number" (its key: hashtext of the number) */
#define QUEUE_LOCK_CLASS 1953393005

extern bool queue_live_row_owns(const char *sid);
extern void queue_close_attempt(int64 attempt_id, const char *outcome, const char *sid);
extern bool queue_release_number(const char *home, const char *sid, char **error);
extern void queue_enqueue(const char *kind, int64 number_id, const char *phone, const char *sid,
						const char *account_sid, const char *payload, int64 attempt_id);
extern bool queue_hosted_order_committed(const char *sid);

#endif							/* TWILIO_NUMBERS_QUEUE_H */
