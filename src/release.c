/*
 * release.c — a number of ours released at Twilio by its SID, wherever it
 * is: in the account we last knew it in, else in another account this
 * database manages (DELETE, with the emergency address removed first when
 * Twilio refuses for it).  The release job (jobs.c) and the undoing of
 * rolled-back creations (change_kinds.c) call it.
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "release.h"
#include "http.h"
#include "messaging.h"
#include "settings.h"
#include "store.h"
#include "twilio.h"

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
	foreach(lc, store_queue_managed_accounts(tn_account_sid))
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
