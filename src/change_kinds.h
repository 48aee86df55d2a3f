/*
 * change_kinds.h — one entry per kind of Twilio change (change_kinds.c).
 */
#ifndef TWILIO_NUMBERS_CHANGE_KINDS_H
#define TWILIO_NUMBERS_CHANGE_KINDS_H

#include "postgres.h"

#include "twilio.h"

/*
 * What the extension knows about one kind of change it makes at Twilio
 * inside a transaction that may roll back: how it shows in inflight, how an
 * ended intent of it is settled, and — for creations (a number bought, an
 * order filed) — how a lost reply is looked up and a rolled-back creation
 * undone.
 */
typedef struct ChangeKind
{
	uint8		intent;			/* INTENT_* */
	const char *name;			/* as twilio_numbers.inflight shows it */
	const char *undo_job;		/* the work_queue kind that undoes it after a rollback */
	bool		creates;		/* a creation (its attempt recorded first), not a change */
	/* creations: what Twilio holds under the number (*ok false: the look-up failed) */
	List	   *(*look_up) (const char *account_sid, const char *phone, TwilioReply *reply, bool *ok);
	/* creations: does a committed row own this SID (then it is not undone)? */
	bool		(*kept) (const char *sid);
	/* creations: undo at Twilio; true when it is gone */
	bool		(*remove) (const char *account_sid, const char *sid, char **error);
	/* changes: the re-sync payload's key for the other SID the change touched
	 * (NULL: other_account_sid, where a transfer moved the number) */
	const char *other_key;
} ChangeKind;

extern const ChangeKind *change_kind(uint8 intent);
extern const ChangeKind *change_kind_undone_by(const char *job_kind);

#endif							/* TWILIO_NUMBERS_CHANGE_KINDS_H */
