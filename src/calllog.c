/*
 * calllog.c — the Twilio call log: every HTTP request the extension sent,
 * its status, Twilio's error code and how long it took.
 *
 * A ring of fixed-size entries in shared memory when the module is preloaded
 * (so a DBA sees every backend's and the worker's calls, rolled back or not,
 * without the cost of a table write per call); a ring private to the backend
 * otherwise.  Never holds credentials: URLs carry none (auth is a header).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "calllog.h"
#include "settings.h"

typedef struct CallLogEntry
{
	TimestampTz at;
	int			pid;
	int			status;
	int			twilio_code;
	double		ms;
	char		method[8];
	char		host[64];
	char		path[320];
	char		error[128];
} CallLogEntry;

typedef struct CallLogRing
{
	slock_t		mutex;
	uint64		next;			/* entries ever written */
	int			size;
	CallLogEntry entries[FLEXIBLE_ARRAY_MEMBER];
} CallLogRing;

static CallLogRing *ring = NULL;

Size
calllog_shmem_size(void)
{
	return add_size(offsetof(CallLogRing, entries),
					mul_size(sizeof(CallLogEntry), tn_call_log_size));
}

void
calllog_shmem_init(void)
{
	bool		found;

	ring = ShmemInitStruct("twilio_numbers call log", calllog_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&ring->mutex);
		ring->next = 0;
		ring->size = tn_call_log_size;
	}
}

/* The ring: shared when preloaded, else this backend's own. */
static CallLogRing *
get_ring(void)
{
	if (ring == NULL)
	{
		ring = MemoryContextAllocZero(TopMemoryContext, calllog_shmem_size());
		SpinLockInit(&ring->mutex);
		ring->size = tn_call_log_size;
	}
	return ring;
}

/* Split "scheme://host[:port]/path?query" into host and path?query. */
static void
split_url(const char *url, char *host, size_t hostlen, char *path, size_t pathlen)
{
	const char *p = strstr(url, "://");
	const char *slash;

	p = p ? p + 3 : url;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	strlcpy(host, p, Min(hostlen, (size_t) (slash - p) + 1));
	strlcpy(path, *slash ? slash : "/", pathlen);
}

/* Append one request to the log.  Cheap, and never fails the caller. */
void
calllog_record(const char *method, const char *url, long status, int twilio_code, double ms,
			   const char *error)
{
	CallLogRing *r = get_ring();
	CallLogEntry e;

	memset(&e, 0, sizeof(e));
	e.at = GetCurrentTimestamp();
	e.pid = MyProcPid;
	e.status = (int) status;
	e.ms = ms;
	strlcpy(e.method, method, sizeof(e.method));
	split_url(url, e.host, sizeof(e.host), e.path, sizeof(e.path));
	e.twilio_code = twilio_code;
	if (error)
		strlcpy(e.error, error, sizeof(e.error));

	SpinLockAcquire(&r->mutex);
	r->entries[r->next % r->size] = e;
	r->next++;
	SpinLockRelease(&r->mutex);
}

PG_FUNCTION_INFO_V1(tn_call_log);

/* call_log(): the ring's entries, oldest first. */
Datum
tn_call_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CallLogRing *r = get_ring();
	CallLogEntry *copy;
	uint64		next;
	uint64		first;
	int			n;

	InitMaterializedSRF(fcinfo, 0);

	/* copy out under the lock, build tuples after it */
	copy = palloc(sizeof(CallLogEntry) * r->size);
	SpinLockAcquire(&r->mutex);
	next = r->next;
	first = next > (uint64) r->size ? next - r->size : 0;
	n = (int) (next - first);
	for (int i = 0; i < n; i++)
		copy[i] = r->entries[(first + i) % r->size];
	SpinLockRelease(&r->mutex);

	for (int i = 0; i < n; i++)
	{
		CallLogEntry *e = &copy[i];
		Datum		values[10];
		bool		nulls[10] = {0};

		values[0] = Int64GetDatum((int64) (first + i + 1));
		values[1] = TimestampTzGetDatum(e->at);
		values[2] = Int32GetDatum(e->pid);
		values[3] = CStringGetTextDatum(e->method);
		values[4] = CStringGetTextDatum(e->host);
		values[5] = CStringGetTextDatum(e->path);
		values[6] = Int32GetDatum(e->status);
		nulls[6] = (e->status == 0);
		values[7] = Int32GetDatum(e->twilio_code);
		nulls[7] = (e->twilio_code == 0);
		values[8] = Float8GetDatum(e->ms);
		values[9] = CStringGetTextDatum(e->error);
		nulls[9] = (e->error[0] == '\0');
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
