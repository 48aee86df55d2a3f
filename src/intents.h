/*
 * intents.h — Twilio changes of transactions in flight, their fund holds and
 * their hand-off to the attempt recorder (intents.c).
 */
#ifndef TWILIO_NUMBERS_INTENTS_H
#define TWILIO_NUMBERS_INTENTS_H

#include "postgres.h"
#include "utils/timestamp.h"

/* The kinds of Twilio changes a transaction makes (change_kinds.c). */
#define INTENT_PURCHASE	1		/* a number bought */
#define INTENT_UPDATE	2		/* its configuration changed */
#define INTENT_HOSTED	3		/* a hosted number order filed */
#define INTENT_TRUNK	4		/* assigned to or removed from a SIP trunk */
#define INTENT_TRANSFER	5		/* moved to another Twilio (sub)account */
#define INTENT_MESSAGING	6		/* added to or removed from a Messaging Service */

/* Where an intent's durable attempt record stands (recorder.c). */
#define ATTEMPT_NONE		0	/* no record needed (a configuration change) */
#define ATTEMPT_REQUESTED	1	/* the backend waits for the recorder */
#define ATTEMPT_RECORDED	2	/* committed: attempt_id names the row */
#define ATTEMPT_FAILED		3	/* the recorder could not record it */

/* What a backend waits for the recorder to do about its intent's attempt. */
#define RECORDER_IDLE		0
#define RECORDER_SET_SID	1	/* write what Twilio created (sid) into the row */
#define RECORDER_FAILED		2	/* it could not */
#define RECORDER_SID_DONE	3	/* it did: asking again asks nothing more */

/* A Twilio change made inside a transaction that may still roll back. */
typedef struct Intent
{
	bool		in_use;
	bool		ended;			/* its transaction (or savepoint) is over */
	bool		committed;		/* ... and its change committed */
	bool		posted;			/* the change may have reached Twilio */
	uint8		unresolved;		/* POSTs that got no reply and may still land (create.c) */
	uint8		kind;			/* INTENT_* */
	uint8		attempt_state;	/* ATTEMPT_* */
	uint8		recorder_op;	/* RECORDER_*: a pending request for the recorder */
	uint32		generation;		/* tells a reused slot from the one a request named */
	Oid			dboid;
	int			pid;
	TransactionId xid;
	int64		account_id;
	int64		number_id;
	int64		hold_cents;		/* funds reserved until the transaction ends */
	int64		attempt_id;		/* purchase_attempts row, once recorded */
	TimestampTz started_at;
	TimestampTz deadline;		/* after it, no request of this intent can still land */
	uint16		config_mask;	/* which configuration fields the request sends (create.c) */
	char		config_md5[33]; /* and their fingerprint */
	char		phone[24];
	char		sid[40];		/* PN... (HR...) once Twilio answered */
	char		twilio_account_sid[40]; /* where the number is; a resync's other account
										 * (or Messaging Service) */
} Intent;

/* What the recorder does for an intent. */
#define ATTEMPT_OPEN	1		/* insert the attempt row */
#define ATTEMPT_SID		2		/* write the SID Twilio answered into it */
#define ATTEMPT_CLOSE	3		/* close it: the transaction committed, or nothing was sent */

/* A piece of work for the recorder (copied out of an intent). */
typedef struct AttemptRequest
{
	int			slot;
	uint32		generation;
	uint8		op;				/* ATTEMPT_OPEN, _SID, _CLOSE */
	int64		attempt_id;		/* _SID, _CLOSE */
	bool		committed;		/* _CLOSE: committed (else: nothing was sent) */
	char		sid[40];		/* _SID, _CLOSE */
	uint8		kind;
	int			pid;
	TimestampTz deadline;
	uint16		config_mask;
	char		config_md5[33];
	char		phone[24];
	char		twilio_account_sid[40];
} AttemptRequest;

extern Size intents_shmem_size(void);
extern void intents_shmem_init(void);
extern int	intents_snapshot(Intent **out);
extern int64 intents_hold(int64 account_id, int n, char **phones, const int64 *hold_cents,
							 int *slots);
extern int64 intents_held(int64 account_id);
extern int	intent_change(int kind, int64 number_id, const char *phone);
extern int	intent_begin(int kind, int64 account_id, int64 number_id, const char *phone);
extern void intent_set_posted(int slot, bool posted);
extern void intent_set_unresolved(int slot, int n);
extern void intent_set_hold(int slot, int64 hold_cents);
extern void intent_set_sid(int slot, const char *sid, const char *account_sid);
extern void intent_get(int slot, Intent *copy);
extern void intent_end(int slot, bool committed);
extern int	intents_ended(Intent *out, int *slots, int max);
extern void intents_free(const int *slots, int n);
extern bool intent_buying(const char *phone);
extern bool intents_sid_in_flight(const char *sid, int except_slot);
extern bool intents_attempt_in_flight(int64 attempt_id);
extern void intents_recorder_register(void);
extern void intents_recorder_unregister(void);
extern void intents_request_attempts(const int *slots, int n, const char *twilio_account_sid,
										TimestampTz deadline, uint16 config_mask, const char *config_md5);
extern int	intents_recorder_work(AttemptRequest *out, int max);
extern void intents_recorder_done(const AttemptRequest *reqs, const int64 *ids, int n);
extern bool intents_wait_recorder(const int *slots, int n, long timeout_ms);
extern void intents_request_sids(const int *slots, int n);

#endif							/* TWILIO_NUMBERS_INTENTS_H */
