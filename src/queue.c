/*
 * queue.c — the durable work queue and the facts its jobs go by: jobs
 * queued in the caller's transaction, purchase attempts closed, whether a
 * committed row owns a SID, the Twilio accounts this database manages, and
 * a number of ours released wherever it is.
 *
 * The jobs themselves (what the worker does for each kind) are jobs.c's.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "queue.h"
#include "http.h"
#include "messaging.h"
#include "settings.h"
#include "twilio.h"

/* Queue a job (inside the current transaction). */
void
queue_enqueue(const char *kind, int64 number_id, const char *phone, const char *sid,
			const char *account_sid, const char *payload, int64 attempt_id)
{
	Oid			types[7] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = CStringGetTextDatum(kind);
	args[1] = Int64GetDatum(number_id);
	nulls[1] = number_id ? ' ' : 'n';
	args[2] = phone && phone[0] ? CStringGetTextDatum(phone) : (Datum) 0;
	nulls[2] = phone && phone[0] ? ' ' : 'n';
	args[3] = sid && sid[0] ? CStringGetTextDatum(sid) : (Datum) 0;
	nulls[3] = sid && sid[0] ? ' ' : 'n';
	args[4] = account_sid && account_sid[0] ? CStringGetTextDatum(account_sid) : (Datum) 0;
	nulls[4] = account_sid && account_sid[0] ? ' ' : 'n';
	args[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload ? payload : "{}"));
	args[6] = Int64GetDatum(attempt_id);
	nulls[6] = attempt_id ? ' ' : 'n';
	if (SPI_execute_with_args("INSERT INTO twilio_numbers.work_queue "
							  "(kind, number_id, phone_number, twilio_sid, twilio_account_sid, payload, attempt_id) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
							  7, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into work_queue");
}

/* Does a live (not released) row own this Twilio SID?  (SPI connected) */
bool
queue_live_row_owns(const char *sid)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(sid)};

	if (SPI_execute_with_args("SELECT 1 FROM twilio_numbers.owned_numbers "
							  "WHERE twilio_sid = $1 AND status <> 'released'",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read owned_numbers");
	return SPI_processed > 0;
}

/* Close a purchase attempt with its outcome (SPI connected; 0: none). */
void
queue_close_attempt(int64 attempt_id, const char *outcome, const char *sid)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', sid && sid[0] ? ' ' : 'n'};

	if (attempt_id == 0)
		return;
	args[0] = Int64GetDatum(attempt_id);
	args[1] = CStringGetTextDatum(outcome);
	args[2] = sid && sid[0] ? CStringGetTextDatum(sid) : (Datum) 0;
	if (SPI_execute_with_args("UPDATE twilio_numbers.purchase_attempts SET state = 'closed', outcome = $2, "
							  "twilio_sid = coalesce($3, twilio_sid), closed_at = now() "
							  "WHERE attempt_id = $1 AND state = 'open'",
							  3, types, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update purchase_attempts");
}

/* The Twilio accounts this database manages, the main one first. */
static List *
managed_accounts(void)
{
	Datum		args[1] = {CStringGetTextDatum(tn_account_sid)};
	List	   *accounts = NIL;

	if (SPI_execute_with_args("SELECT unnest(twilio_numbers._managed_accounts($1))",
							  1, (Oid[]) {TEXTOID}, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the managed accounts");
	for (uint64 i = 0; i < SPI_processed; i++)
		accounts = lappend(accounts, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return accounts;
}

/*
 * DELETE a number in one account; when Twilio refuses (HTTP 400) because an
 * emergency address is registered, remove the address and DELETE again.
 */
static void
delete_number(const char *account_sid, const char *sid, TwilioReply *reply)
{
	bool		cleared = false;
	char	   *ignored = NULL;

	twilio_request(HTTP_DELETE, twilio_account_url_for(account_sid, "/IncomingPhoneNumbers/%s.json", sid),
				   NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "release the number", reply);
	/* Twilio refuses while an emergency address is registered: remove it first */
	if (reply->http.complete && reply->http.status == 400 &&
		emergency_clear_for_release(account_sid, sid, &cleared, &ignored) && cleared)
		twilio_request(HTTP_DELETE, twilio_account_url_for(account_sid, "/IncomingPhoneNumbers/%s.json", sid),
					   NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "release the number", reply);
}

/*
 * Release a number of ours by its SID — unique forever — wherever it is: in
 * home (where we last knew it), else in another managed account (a transfer
 * rolled back in a savepoint, or a purchase moved and then rolled back, may
 * have left it there).  True when it is gone everywhere.
 */
bool
queue_release_number(const char *home, const char *sid, char **error)
{
	TwilioReply reply;
	ListCell   *lc;

	home = home && home[0] ? home : tn_account_sid;
	delete_number(home, sid, &reply);
	if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
	{
		*error = twilio_describe_failure(&reply);
		return false;
	}
	if (reply.http.status != 404)
		return true;
	foreach(lc, managed_accounts())
	{
		const char *other = lfirst(lc);

		if (strcmp(other, home) == 0)
			continue;
		twilio_request(HTTP_GET, twilio_account_url_for(other, "/IncomingPhoneNumbers/%s.json", sid),
					   NULL, TWILIO_NO_ERROR | HTTP_RETRY_SAFE, "look the number up", &reply);
		if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
		{
			/*
			 * One broken subaccount does not hold up the release of a number
			 * its home account says is gone: reconcile lists that account
			 * again later, and a number of ours it finds there (its SID is
			 * in owned_numbers) is released then.
			 */
			ereport(LOG,
					(errmsg("twilio_numbers: %s could not be looked for in account %s: %s; counted as released "
							"(reconcile looks there again)", sid, other, twilio_describe_failure(&reply))));
			continue;
		}
		if (reply.http.status < 300)
		{
			delete_number(other, sid, &reply);
			if (!reply.http.complete || (reply.http.status >= 300 && reply.http.status != 404))
			{
				*error = twilio_describe_failure(&reply);
				return false;
			}
			return true;
		}
	}
	return true;
}

/* Was the hosted order with this SID recorded by a committed transaction?  (SPI connected) */
bool
queue_hosted_order_committed(const char *sid)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(sid)};

	if (SPI_execute_with_args("SELECT 1 FROM twilio_numbers.hosted_orders WHERE order_sid = $1",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read hosted_orders");
	return SPI_processed > 0;
}
