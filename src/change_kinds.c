/*
 * change_kinds.c — the kinds of change the extension makes at Twilio inside
 * a transaction that may still roll back, one entry each.
 *
 * A transaction records an intent of its kind before the request
 * (shmem.c); when the transaction (or its savepoint) ends, the recorder
 * settles the intent by the entry's rule (recorder.c):
 *   creations (a number bought, a hosted order filed) record an attempt
 *     first; committed, the attempt is closed; refused, closed as refused;
 *     rolled back after its request may have reached Twilio, the entry's
 *     undo job (jobs.c) removes what the attempt created — by SID, or after
 *     a lost reply by the entry's look-up and create.c's test — and closes
 *     the attempt;
 *   changes (configuration, trunk, transfer, Messaging Service) rolled back
 *     are re-synced: the worker puts Twilio back in step with the committed
 *     row (messaging_resync: messaging.c).
 * The same look-up resolves a creation's lost reply (create.c).  A new kind
 * of change is one entry here.
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "change_kinds.h"
#include "intents.h"
#include "release.h"
#include "store.h"
#include "twilio.h"

static const ChangeKind change_kinds[] = {
	{INTENT_PURCHASE, "purchase", "compensate", true,
	twilio_owned_by_phone, queue_live_row_owns, queue_release_number},
	{INTENT_HOSTED, "hosted order", "hosted_cancel", true,
	twilio_hosted_orders_by_phone, queue_hosted_order_committed, twilio_cancel_hosted_order},
	{INTENT_UPDATE, "update", "resync", false},
	{INTENT_TRUNK, "trunk assignment", "resync", false},
	{INTENT_TRANSFER, "transfer", "resync", false},
	{INTENT_MESSAGING, "messaging service", "messaging_resync", false,
	NULL, NULL, NULL, "other_service_sid"},
};

const ChangeKind *
change_kind(uint8 intent)
{
	for (int i = 0; i < lengthof(change_kinds); i++)
		if (change_kinds[i].intent == intent)
			return &change_kinds[i];
	elog(ERROR, "unknown kind of change %d", intent);
	return NULL;				/* keep compiler quiet */
}

/* The creation whose undo job this is, or NULL. */
const ChangeKind *
change_kind_undone_by(const char *job_kind)
{
	for (int i = 0; i < lengthof(change_kinds); i++)
		if (change_kinds[i].creates && strcmp(change_kinds[i].undo_job, job_kind) == 0)
			return &change_kinds[i];
	return NULL;
}
