/*
 * change_kinds.c — the kinds of change the extension makes at Twilio inside
 * a transaction that may still roll back, one entry each.
 *
 * A transaction records an intent of its kind before the request (shmem.c);
 * when the transaction (or its savepoint) ends, the worker settles the
 * intent with the entry's rule:
 *   creations (a number bought, a hosted order filed) record an attempt
 *     first (recorder.c); committed, the attempt is closed; refused, closed as
 *     refused; rolled back after its request may have reached Twilio, a job
 *     undoes what the attempt created — by SID, or after a lost reply by the
 *     entry's look-up and create.c's test — and closes the attempt;
 *   changes (configuration, trunk, transfer) rolled back are re-synced: the
 *     worker puts Twilio back in step with the committed row (jobs.c).
 * A new kind of change is one entry here.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "twilio_numbers.h"

/* A creation ended: close its attempt, or have what it left undone. */
static void
settle_creation(const ChangeKind *kind, const Intent *it)
{
	if (it->committed)
		attempt_close(it->attempt_id, "committed", it->sid);
	else if (!it->posted)
		attempt_close(it->attempt_id, "refused", NULL);
	else if (it->sid[0] && kind->kept(it->sid))
		attempt_close(it->attempt_id, "committed", it->sid);
	else
		job_enqueue(kind->undo_job, 0, it->phone, it->sid, it->twilio_account_sid, NULL, it->attempt_id);
}

/*
 * A change rolled back: re-sync the number (a transfer also says where it
 * went) — unless its row rolled back too (a number bought and changed in one
 * transaction): the purchase's compensation undoes the whole number.
 */
static void
settle_change(const ChangeKind *kind, const Intent *it)
{
	if (SPI_execute_with_args("SELECT 1 FROM twilio_numbers.owned_numbers WHERE number_id = $1",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(it->number_id)}, NULL,
							  true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read owned_numbers");
	if (SPI_processed == 0)
		return;
	job_enqueue(kind->undo_job, it->number_id, it->phone, NULL, NULL,
				it->twilio_account_sid[0]
				? psprintf("{\"other_account_sid\": \"%s\"}", it->twilio_account_sid) : NULL, 0);
}

static const ChangeKind change_kinds[] = {
	{INTENT_PURCHASE, "purchase", "compensate", settle_creation,
	twilio_owned_by_phone, tn_live_row_owns, release_number_wherever},
	{INTENT_HOSTED, "hosted order", "hosted_cancel", settle_creation,
	hosted_orders_by_phone, tn_hosted_order_committed, hosted_order_cancel},
	{INTENT_UPDATE, "update", "resync", settle_change},
	{INTENT_TRUNK, "trunk assignment", "resync", settle_change},
	{INTENT_TRANSFER, "transfer", "resync", settle_change},
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
		if (change_kinds[i].look_up && strcmp(change_kinds[i].undo_job, job_kind) == 0)
			return &change_kinds[i];
	return NULL;
}
