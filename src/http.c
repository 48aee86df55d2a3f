/*
 * http.c — the extension's one HTTP client.
 *
 * One libcurl easy handle per backend, created on first use and reused, so
 * calls to the same Twilio host share a kept-alive connection.  Every request
 * goes through http_perform, which owns the retry policy:
 *
 *   - a GET (or a caller-declared safe request) is retried after a transport
 *     failure or a 5xx, with jittered exponential backoff;
 *   - any request answered 429 is retried after Retry-After (Twilio did not
 *     act on it), and the cluster's budget shrinks (budget.c);
 *   - a POST/DELETE is never resent after it may have reached Twilio: the
 *     caller gets maybe_applied and must look the outcome up.  Such requests
 *     also use a fresh connection, because libcurl silently resends a request
 *     whose reused connection died before any reply byte.
 *
 * Each attempt holds one slot of the cluster's request budget (budget.c)
 * while it is on the wire, none while a retry waits.
 *
 * Waiting honours cancel: libcurl's progress callback returns non-zero when
 * a cancel or terminate is pending, so statement_timeout and
 * pg_cancel_backend end a hung call within a second.  Callbacks never
 * ereport or palloc (they run inside libcurl); the receive buffer is malloc'd
 * and copied out once the transfer is over.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "budget.h"
#include "compat.h"
#include "http.h"
#include "credentials.h"
#include "settings.h"
#include "twclock.h"

/* replies larger than this are refused (Twilio's largest page is ~1 MB) */
#define HTTP_MAX_BODY (64 * 1024 * 1024)

typedef struct RecvBuffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		overflow;
} RecvBuffer;

static CURL *curl_handle = NULL;
static struct curl_slist *curl_headers = NULL;
static RecvBuffer recv_buf;
static long retry_after_ms = -1;
static time_t reply_date = -1;		/* the reply's Date header (Twilio's clock) */
static TimestampTz reply_date_at = 0;	/* when we received it (ours) */

/* Who wants to hear of every attempt (the Twilio layer logs them); NULL: nobody. */
HttpAttemptHook http_attempt_hook = NULL;

#ifdef TN_HAVE_NAMED_WAIT_EVENTS
/*
 * Our wait event while an HTTP call waits, looked up on first use and kept,
 * as worker_spi keeps its own: WaitEventExtensionNew takes a lock and
 * searches shared memory.
 */
static uint32
http_wait_event(void)
{
	static uint32 wait_event = 0;

	if (wait_event == 0)
		wait_event = WaitEventExtensionNew("TwilioHttp");
	return wait_event;
}
#define TN_WAIT_EVENT_HTTP http_wait_event()
#else
#define TN_WAIT_EVENT_HTTP PG_WAIT_EXTENSION
#endif

const char *
http_method_name(HttpMethod method)
{
	switch (method)
	{
		case HTTP_GET:
			return "GET";
		case HTTP_POST:
			return "POST";
		case HTTP_DELETE:
			return "DELETE";
	}
	return "?";
}

/* Append to a malloc'd receive buffer; returns what was taken (0: failure). */
static size_t
buf_append(RecvBuffer *b, const char *ptr, size_t n)
{
	if (b->len + n + 1 > HTTP_MAX_BODY)
	{
		b->overflow = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap)
	{
		size_t		newcap = Max(b->cap * 2, b->len + n + 1);
		char	   *p = realloc(b->data, Max(newcap, 8192));

		if (p == NULL)
			return 0;
		b->data = p;
		b->cap = Max(newcap, 8192);
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* libcurl write callback: append to the backend's receive buffer. */
static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return buf_append(&recv_buf, ptr, size * nmemb);
}

/* libcurl write callback of a parallel transfer: append to its own buffer. */
static size_t
write_parallel_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return buf_append((RecvBuffer *) userdata, ptr, size * nmemb);
}

/*
 * libcurl header callback: keep Retry-After (seconds or an HTTP date), and
 * the Date header with the moment it came (Twilio's clock against ours).
 */
static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	size_t		n = size * nitems;
	static const char name[] = "retry-after:";
	static const char date_name[] = "date:";

	if (n > sizeof(name) - 1 && pg_strncasecmp(buffer, name, sizeof(name) - 1) == 0)
	{
		char		value[128];
		size_t		vlen = Min(n - (sizeof(name) - 1), sizeof(value) - 1);
		char	   *v = value;
		char	   *end;
		long		secs;

		memcpy(value, buffer + sizeof(name) - 1, vlen);
		value[vlen] = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		secs = strtol(v, &end, 10);
		if (end != v && (*end == '\r' || *end == '\n' || *end == '\0' || *end == ' '))
			retry_after_ms = secs < 0 ? 0 : secs * 1000;
		else
		{
			time_t		when = curl_getdate(v, NULL);

			if (when > 0)
				retry_after_ms = Max(0, (long) (when - time(NULL)) * 1000);
		}
	}
	else if (n > sizeof(date_name) - 1 && pg_strncasecmp(buffer, date_name, sizeof(date_name) - 1) == 0)
	{
		char		value[128];
		size_t		vlen = Min(n - (sizeof(date_name) - 1), sizeof(value) - 1);
		time_t		when;

		memcpy(value, buffer + sizeof(date_name) - 1, vlen);
		value[vlen] = '\0';
		when = curl_getdate(value, NULL);
		if (when > 0)
		{
			reply_date = when;
			reply_date_at = GetCurrentTimestamp();	/* gettimeofday: no palloc */
		}
	}
	return n;
}

/* libcurl progress callback: stop the transfer when a cancel is pending. */
static int
progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * What every handle sets, the session's and an array purchase's alike:
 * cancel through the progress callback, our headers, no redirects, kept-alive
 * connections, TLS verified, HTTP(S) only.
 */
static void
set_common_options(CURL *h)
{
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, curl_headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT,
					 "twilio_numbers/" EXTVERSION " (PostgreSQL " PG_MAJORVERSION ")");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

/* The backend's handle, set up once with the options that never change. */
static CURL *
get_handle(void)
{
	static bool global_done = false;

	if (curl_handle)
		return curl_handle;

	if (!global_done)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl")));
		global_done = true;
	}
	curl_handle = curl_easy_init();
	if (curl_handle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));

	curl_headers = curl_slist_append(NULL, "Accept: application/json");

	curl_easy_setopt(curl_handle, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl_handle, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(curl_handle, CURLOPT_HEADERFUNCTION, header_cb);
	set_common_options(curl_handle);
	return curl_handle;
}

/*
 * The credentials in use (credentials.c: the credentials file, re-read after
 * a reload, or the settings): API key + secret if set, else SID + token.
 */
static void
set_credentials(CURL *h)
{
	credentials_load();
	if (tn_api_key[0] != '\0')
	{
		curl_easy_setopt(h, CURLOPT_USERNAME, tn_api_key);
		curl_easy_setopt(h, CURLOPT_PASSWORD, tn_api_secret);
	}
	else
	{
		curl_easy_setopt(h, CURLOPT_USERNAME, tn_account_sid);
		curl_easy_setopt(h, CURLOPT_PASSWORD, tn_auth_token);
	}
	curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
}

/*
 * Send one request and wait for its reply.  Fills result; never ereports
 * while libcurl is running.  Returns the libcurl code.
 */
static CURLcode
perform_once(HttpMethod method, const char *url, const char *form,
			 HttpResult *result, double *elapsed_ms)
{
	CURL	   *h = get_handle();
	char		errbuf[CURL_ERROR_SIZE];
	CURLcode	rc;
	instr_time	start,
				duration;
	TimestampTz sent_at;

	/* a slot of the cluster's budget (may wait; a cancel raises here) */
	budget_acquire();

	errbuf[0] = '\0';
	recv_buf.len = 0;
	recv_buf.overflow = false;
	if (recv_buf.data)
		recv_buf.data[0] = '\0';
	retry_after_ms = -1;
	reply_date = -1;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) tn_timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) tn_connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_CAINFO,
					 (tn_ca_file && tn_ca_file[0] != '\0') ? tn_ca_file : NULL);
	set_credentials(h);

	switch (method)
	{
		case HTTP_GET:
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 0L);
			break;
		case HTTP_POST:
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) (form ? strlen(form) : 0));
			curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, form ? form : "");
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
			break;
		case HTTP_DELETE:
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
			break;
	}

	INSTR_TIME_SET_CURRENT(start);
	sent_at = GetCurrentTimestamp();
	pgstat_report_wait_start(TN_WAIT_EVENT_HTTP);
	rc = curl_easy_perform(h);
	pgstat_report_wait_end();
	/* Twilio's clock against ours (twclock.c), from any reply that says it */
	if (reply_date > 0)
		twclock_note(reply_date, sent_at, reply_date_at);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	*elapsed_ms = INSTR_TIME_GET_MILLISEC(duration);

	/* the error buffer lives on this stack frame: detach it */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);

	result->attempts++;
	result->complete = (rc == CURLE_OK);
	result->status = 0;
	if (rc == CURLE_OK)
	{
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result->status);
		budget_release(result->status == 429 ? BUDGET_THROTTLED : BUDGET_ANSWERED);
	}
	else
		budget_release(BUDGET_NO_REPLY);
	if (rc == CURLE_OK)
		result->error[0] = '\0';
	else if (recv_buf.overflow)
		strlcpy(result->error, "reply larger than 64 MB", sizeof(result->error));
	else
		strlcpy(result->error, errbuf[0] ? errbuf : curl_easy_strerror(rc),
				sizeof(result->error));

	/* a failed handshake or certificate check: nothing was sent */
	result->tls_failed = (rc == CURLE_PEER_FAILED_VERIFICATION ||
						  rc == CURLE_SSL_CONNECT_ERROR ||
						  rc == CURLE_SSL_CACERT_BADFILE ||
						  rc == CURLE_SSL_CERTPROBLEM ||
						  rc == CURLE_SSL_ISSUER_ERROR);

	/*
	 * Whether a failed request may have been acted on: only a refused or
	 * unresolvable connection, or a failed handshake, proves it never left.
	 */
	result->maybe_applied = (rc != CURLE_OK &&
							 rc != CURLE_COULDNT_CONNECT &&
							 rc != CURLE_COULDNT_RESOLVE_HOST &&
							 rc != CURLE_COULDNT_RESOLVE_PROXY &&
							 !result->tls_failed);
	return rc;
}

/* Wait ms milliseconds, or less if a cancel arrives (which then throws). */
void
http_sleep(long ms)
{
	instr_time	start,
				now;

	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		left = ms - (long) INSTR_TIME_GET_MILLISEC(now);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, TN_WAIT_EVENT_HTTP);
		ResetLatch(MyLatch);
	}
}

/* Backoff before retry n (1-based): base * 2^(n-1), jittered to 50–100 %. */
long
http_backoff_ms(int n)
{
	double		base = (double) tn_retry_backoff_ms * (double) (1L << Min(n - 1, 16));
	double		jittered = base * (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state));

	return (long) Min(jittered, (double) tn_retry_max_wait_ms);
}

/*
 * Perform a request with the retry policy described at the top of the file.
 * The result's body is palloc'd in the current memory context.  Transport
 * failures are reported in result, not raised; cancels are raised.
 */
void
http_perform(HttpMethod method, const char *url, const char *form,
			 int flags, HttpResult *result)
{
	bool		retry_safe = (method == HTTP_GET) || (flags & HTTP_RETRY_SAFE);

	memset(result, 0, sizeof(*result));

	for (;;)
	{
		CURLcode	rc;
		double		ms;
		long		wait_ms;
		bool		retry;

		rc = perform_once(method, url, form, result, &ms);

		if (http_attempt_hook)
			http_attempt_hook(method, url, result, recv_buf.data, ms);

		if (rc == CURLE_ABORTED_BY_CALLBACK)
		{
			/* a cancel or terminate stopped the transfer: raise it */
			CHECK_FOR_INTERRUPTS();
			/* interrupts are held off: give up without retrying */
			break;
		}

		if (result->complete && result->status == 429)
		{
			retry = true;
			wait_ms = Max(retry_after_ms, http_backoff_ms(result->attempts));
			wait_ms = Min(wait_ms, (long) tn_retry_max_wait_ms);
		}
		else if (result->complete && result->status >= 500)
		{
			retry = retry_safe;
			wait_ms = http_backoff_ms(result->attempts);
		}
		else if (result->tls_failed)
			retry = false;		/* a certificate does not fix itself */
		else if (!result->complete)
		{
			retry = retry_safe || !result->maybe_applied;
			wait_ms = http_backoff_ms(result->attempts);
		}
		else
			retry = false;

		if (!retry || result->attempts > tn_max_retries)
			break;
		http_sleep(wait_ms);
	}

	/* copy the reply out of libcurl's world into palloc'd memory */
	result->body_len = recv_buf.len;
	result->body = palloc(recv_buf.len + 1);
	if (recv_buf.len > 0)
		memcpy(result->body, recv_buf.data, recv_buf.len);
	result->body[recv_buf.len] = '\0';
}

/* ---- several requests at once (libcurl's multi interface) ------------------ */

/* A transfer of http_perform_parallel: its own handle, buffer and slot. */
typedef struct ParallelTransfer
{
	CURL	   *h;
	RecvBuffer	buf;
	char		errbuf[CURL_ERROR_SIZE];
	instr_time	start;
	bool		in_multi;		/* added to the multi handle, not yet done */
	bool		holding;		/* holds a slot of the request budget */
} ParallelTransfer;

/* Set up and start one transfer (the options of the backend's handle). */
static void
start_parallel(CURLM *multi, ParallelTransfer *t, const HttpParallel *r, int index)
{
	CURL	   *h = curl_easy_init();

	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	t->h = h;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_parallel_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &t->buf);
	set_common_options(h);
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) tn_timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) tn_connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_CAINFO,
					 (tn_ca_file && tn_ca_file[0] != '\0') ? tn_ca_file : NULL);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *) (intptr_t) index);
	set_credentials(h);
	switch (r->method)
	{
		case HTTP_GET:
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
			break;
		case HTTP_POST:
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) (r->form ? strlen(r->form) : 0));
			curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, r->form ? r->form : "");
			/* never on a reused connection: see perform_once */
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
			break;
		case HTTP_DELETE:
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
			break;
	}
	INSTR_TIME_SET_CURRENT(t->start);
	if (curl_multi_add_handle(multi, h) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start a parallel request")));
	t->in_multi = true;
}

/* A transfer is over: its result (as perform_once fills one), its slot back. */
static void
finish_parallel(CURLM *multi, ParallelTransfer *t, HttpParallel *r, CURLcode rc)
{
	HttpResult *result = &r->result;
	instr_time	duration;

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, t->start);
	curl_multi_remove_handle(multi, t->h);
	t->in_multi = false;

	result->attempts = 1;
	result->complete = (rc == CURLE_OK);
	result->status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &result->status);
	budget_release(rc != CURLE_OK ? BUDGET_NO_REPLY :
				   result->status == 429 ? BUDGET_THROTTLED : BUDGET_ANSWERED);
	t->holding = false;
	if (rc == CURLE_OK)
		result->error[0] = '\0';
	else if (t->buf.overflow)
		strlcpy(result->error, "reply larger than 64 MB", sizeof(result->error));
	else
		strlcpy(result->error, t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc), sizeof(result->error));
	result->tls_failed = (rc == CURLE_PEER_FAILED_VERIFICATION ||
						  rc == CURLE_SSL_CONNECT_ERROR ||
						  rc == CURLE_SSL_CACERT_BADFILE ||
						  rc == CURLE_SSL_CERTPROBLEM ||
						  rc == CURLE_SSL_ISSUER_ERROR);
	result->maybe_applied = (rc != CURLE_OK &&
							 rc != CURLE_COULDNT_CONNECT &&
							 rc != CURLE_COULDNT_RESOLVE_HOST &&
							 rc != CURLE_COULDNT_RESOLVE_PROXY &&
							 !result->tls_failed);
	result->body_len = t->buf.len;
	result->body = palloc(t->buf.len + 1);
	if (t->buf.len > 0)
		memcpy(result->body, t->buf.data, t->buf.len);
	result->body[t->buf.len] = '\0';
	if (http_attempt_hook)
		http_attempt_hook(r->method, r->url, result, t->buf.data, INSTR_TIME_GET_MILLISEC(duration));
	curl_easy_cleanup(t->h);
	t->h = NULL;
}

/*
 * Send n requests at once and wait for every reply: one attempt each, never
 * retried here (the caller applies the retry policy to what came back, and
 * never resends a POST that may have been applied).  Each transfer holds a
 * slot of the cluster's budget while it is on the wire: the first waits for
 * one when none of ours is in flight, the others start only when a slot is
 * free at once.  A cancel stops every transfer and raises.
 */
void
http_perform_parallel(HttpParallel *reqs, int n)
{
	CURLM	   *multi;
	ParallelTransfer *t = palloc0(sizeof(ParallelTransfer) * n);
	int			next = 0;
	int			running = 0;

	(void) get_handle();		/* libcurl's global set-up, the shared headers */
	for (int i = 0; i < n; i++)
		memset(&reqs[i].result, 0, sizeof(HttpResult));
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	PG_TRY();
	{
		while (next < n || running > 0)
		{
			int			still;
			int			left;
			CURLMsg    *msg;
			bool		finished = false;

			while (next < n)
			{
				if (running == 0)
					budget_acquire();
				else if (!budget_try_acquire())
					break;
				t[next].holding = true;
				start_parallel(multi, &t[next], &reqs[next], next);
				running++;
				next++;
			}
			curl_multi_perform(multi, &still);
			while ((msg = curl_multi_info_read(multi, &left)) != NULL)
			{
				char	   *priv = NULL;
				int			i;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
				i = (int) (intptr_t) priv;
				finish_parallel(multi, &t[i], &reqs[i], msg->data.result);
				running--;
				finished = true;
			}

			/*
			 * a slot just freed goes to the next request at once, not after
			 * the next reply or the poll's timeout
			 */
			if (running > 0 && still > 0 && !(finished && next < n))
			{
				pgstat_report_wait_start(TN_WAIT_EVENT_HTTP);
				curl_multi_poll(multi, NULL, 0, 100, NULL);
				pgstat_report_wait_end();
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		for (int i = 0; i < n; i++)
		{
			if (t[i].h)
			{
				if (t[i].in_multi)
					curl_multi_remove_handle(multi, t[i].h);
				curl_easy_cleanup(t[i].h);
			}
			if (t[i].holding)
				budget_release(BUDGET_NO_REPLY);
			free(t[i].buf.data);
		}
		curl_multi_cleanup(multi);
	}
	PG_END_TRY();
}
