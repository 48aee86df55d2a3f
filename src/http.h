/*
 * http.h — the HTTP client (http.c).
 */
#ifndef TWILIO_NUMBERS_HTTP_H
#define TWILIO_NUMBERS_HTTP_H

#include "postgres.h"

typedef enum HttpMethod
{
	HTTP_GET,
	HTTP_POST,
	HTTP_DELETE
} HttpMethod;

/* What one HTTP exchange (after its retries) came to. */
typedef struct HttpResult
{
	bool		complete;		/* a whole HTTP reply arrived */
	bool		maybe_applied;	/* no reply, but the server may have acted */
	bool		tls_failed;		/* the TLS handshake or certificate check failed */
	long		status;			/* HTTP status when complete */
	char	   *body;			/* palloc'd, NUL-terminated (may be "") */
	size_t		body_len;
	int			attempts;		/* requests sent, retries included */
	char		error[256];		/* transport error text when !complete */
} HttpResult;

/*
 * Flags for http_perform.  HTTP_RETRY_SAFE says the request may be sent
 * again after a transport failure or a 5xx (GETs, and DELETEs whose second
 * answer is a harmless 404); without it only 429s and refused connections
 * are retried, since the request then surely was not applied.
 */
#define HTTP_RETRY_SAFE		0x01

extern void http_perform(HttpMethod method, const char *url, const char *form,
						 int flags, HttpResult *result);

/* One request of http_perform_parallel, and what came of its one attempt. */
typedef struct HttpParallel
{
	HttpMethod	method;
	const char *url;
	const char *form;
	HttpResult	result;			/* body palloc'd in the current memory context */
} HttpParallel;

extern void http_perform_parallel(HttpParallel *reqs, int n);

/* Called after every attempt (retries included), with what came back. */
typedef void (*HttpAttemptHook) (HttpMethod method, const char *url, const HttpResult *result,
								 const char *body, double ms);
extern HttpAttemptHook http_attempt_hook;
extern const char *http_method_name(HttpMethod method);
extern void http_sleep(long ms);
extern long http_backoff_ms(int n);

#endif							/* TWILIO_NUMBERS_HTTP_H */
