/*
 * module.c — module start: the settings, the shared-memory hooks and the
 * background worker's registration.
 *
 * Loaded on demand (CREATE EXTENSION, first call) the module offers the
 * catalog functions.  Loaded through shared_preload_libraries it also owns
 * shared memory (call log, in-flight purchases, worker latch) and starts the
 * background worker; functions that need those say so when it is not.
 */
#include "postgres.h"

#include <float.h>
#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "compat.h"
#include "budget.h"
#include "calllog.h"
#include "connect.h"
#include "runners.h"
#include "credentials.h"
#include "drop_guard.h"
#include "settings.h"
#include "intents.h"
#include "shmem.h"
#include "twclock.h"

PG_MODULE_MAGIC;

char	   *tn_api_url = NULL;
char	   *tn_pricing_url = NULL;
char	   *tn_trunking_url = NULL;
char	   *tn_numbers_url = NULL;
char	   *tn_messaging_url = NULL;
char	   *tn_account_sid_setting = NULL;
char	   *tn_auth_token_setting = NULL;
char	   *tn_api_key_setting = NULL;
char	   *tn_api_secret_setting = NULL;
char	   *tn_ca_file = NULL;
int			tn_timeout_ms = 10000;
int			tn_connect_timeout_ms = 3000;
int			tn_max_retries = 3;
int			tn_retry_backoff_ms = 200;
int			tn_retry_max_wait_ms = 30000;
double		tn_markup_percent = 0.0;
int			tn_pricing_ttl_s = 86400;
int			tn_search_reuse_s = 60;
char	   *tn_database = NULL;
int			tn_call_log_size = 1000;
int			tn_max_inflight = 1024;
int			tn_worker_interval_ms = 1000;
int			tn_reconcile_interval_s = 3600;
int			tn_billing_interval_s = 3600;
int			tn_billing_batch_size = 2000;
int			tn_grace_period_s = 7 * 24 * 3600;
int			tn_queue_max_attempts = 10;
int			tn_queue_retry_base_ms = 1000;
int			tn_queue_retry_max_ms = 3600000;
int			tn_hosted_poll_ms = 60000;
int			tn_hosted_poll_max_ms = 3600000;
int			tn_clock_skew_warning_ms = 5000;
bool		tn_follow_promotion = false;
bool		tn_pause_billing = false;
bool		tn_pause_writes = false;
int			tn_max_concurrent_requests = 16;
int			tn_queue_workers = 4;

bool		tn_preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* A background worker of the library in twilio_numbers.database, started after recovery. */
static void
register_worker(const char *function, const char *name, const char *type, int restart_s, int arg)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = restart_s;
	worker.bgw_main_arg = Int32GetDatum(arg);
	strlcpy(worker.bgw_library_name, "twilio_numbers", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, type, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Shared memory: one request covering every part that lives there. */
static void
request_shared_memory(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(calllog_shmem_size());
	RequestAddinShmemSpace(shmem_size());
	RequestAddinShmemSpace(intents_shmem_size());
	RequestAddinShmemSpace(connect_shmem_size());
	RequestAddinShmemSpace(twclock_shmem_size());
	RequestAddinShmemSpace(budget_shmem_size());
	RequestAddinShmemSpace(runners_shmem_size());
	RequestNamedLWLockTranche("twilio_numbers", TN_LOCKS);
}

static void
tn_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	calllog_shmem_init();
	shmem_init();
	intents_shmem_init();
	connect_shmem_init();
	twclock_shmem_init();
	budget_shmem_init();
	runners_shmem_init();
}

/*
 * A base URL must be http(s) with no path, query or credentials, so that a
 * typo cannot send requests (and the Authorization header) somewhere odd.
 */
static bool
check_base_url(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;
	const char *host;

	if (v == NULL || *v == '\0')
		return true;
	if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else
	{
		GUC_check_errdetail("A Twilio base URL must start with https:// or http://.");
		return false;
	}
	if (*host == '\0' || strpbrk(host, "/?#@ ") != NULL)
	{
		GUC_check_errdetail("A Twilio base URL is a scheme and a host[:port], with no path, query or user.");
		return false;
	}
	return true;
}

static void
define_settings(void)
{
	DefineCustomStringVariable("twilio_numbers.api_url",
							   "Base URL of Twilio's REST API (api.twilio.com).",
							   "Only a superuser can change it; tests point it at the emulator.",
							   &tn_api_url, "https://api.twilio.com",
							   PGC_SUSET, 0, check_base_url, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.pricing_url",
							   "Base URL of Twilio's Pricing API (pricing.twilio.com).",
							   NULL, &tn_pricing_url, "https://pricing.twilio.com",
							   PGC_SUSET, 0, check_base_url, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.trunking_url",
							   "Base URL of Twilio's SIP Trunking API (trunking.twilio.com).",
							   NULL, &tn_trunking_url, "https://trunking.twilio.com",
							   PGC_SUSET, 0, check_base_url, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.numbers_url",
							   "Base URL of Twilio's Numbers v2 API (numbers.twilio.com).",
							   NULL, &tn_numbers_url, "https://numbers.twilio.com",
							   PGC_SUSET, 0, check_base_url, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.messaging_url",
							   "Base URL of Twilio's Messaging v1 API (messaging.twilio.com).",
							   NULL, &tn_messaging_url, "https://messaging.twilio.com",
							   PGC_SUSET, 0, check_base_url, NULL, NULL);

	/*
	 * Credentials: superuser-only settings, hidden from SHOW ALL and from
	 * pg_settings for everyone else.  Set them in postgresql.conf or with
	 * ALTER SYSTEM, never as function arguments.
	 */
	DefineCustomStringVariable("twilio_numbers.account_sid",
							   "Twilio account SID (AC...) whose numbers this database manages.",
							   NULL, &tn_account_sid_setting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.auth_token",
							   "Twilio auth token of account_sid (secret).",
							   NULL, &tn_auth_token_setting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.api_key",
							   "Twilio API key SID (SK...), used instead of the auth token when set.",
							   NULL, &tn_api_key_setting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.api_secret",
							   "Secret of api_key (secret).",
							   NULL, &tn_api_secret_setting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("twilio_numbers.ca_file",
							   "CA bundle used to verify Twilio's TLS certificate (empty: the system's).",
							   NULL, &tn_ca_file, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("twilio_numbers.timeout_ms",
							"Longest time one HTTP request to Twilio may take.",
							NULL, &tn_timeout_ms, 10000, 100, 600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.connect_timeout_ms",
							"Longest time to open a connection to Twilio.",
							NULL, &tn_connect_timeout_ms, 3000, 100, 60000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.max_concurrent_requests",
							"Requests in flight to Twilio at once, all backends and background processes together.",
							"A process that finds them all taken waits for one; a 429 from Twilio halves "
							"the number used for a while.",
							&tn_max_concurrent_requests, 16, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.max_retries",
							"Retries of a GET, or of any request answered 429, before giving up.",
							NULL, &tn_max_retries, 3, 0, 10,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.retry_backoff_ms",
							"First retry delay; it doubles per retry, with jitter.",
							NULL, &tn_retry_backoff_ms, 200, 1, 60000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.retry_max_wait_ms",
							"Longest single wait between retries, Retry-After included.",
							NULL, &tn_retry_max_wait_ms, 30000, 1, 600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("twilio_numbers.markup_percent",
							 "Markup added to Twilio's price where price_list has no row.",
							 NULL, &tn_markup_percent, 0.0, -100.0, 10000.0,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.pricing_ttl_s",
							"How long Twilio's prices stay cached in pricing_cache.",
							NULL, &tn_pricing_ttl_s, 86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.search_reuse_s",
							"How long a number this session's numbers_search returned is bought without looking it up again.",
							"0 looks every number up in Twilio's inventory before buying it.",
							&tn_search_reuse_s, 60, 0, 3600,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.worker_interval_ms",
							"How often the background worker looks for work when nobody wakes it.",
							NULL, &tn_worker_interval_ms, 1000, 10, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.reconcile_interval_s",
							"How often the worker reconciles with Twilio (0: only at start-up, -1: never).",
							NULL, &tn_reconcile_interval_s, 3600, -1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.hosted_poll_ms",
							"First interval between two looks at a hosted order; doubles while nothing changes.",
							NULL, &tn_hosted_poll_ms, 60000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.hosted_poll_max_ms",
							"Longest interval between two looks at a hosted order.",
							NULL, &tn_hosted_poll_max_ms, 3600000, 10, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.billing_interval_s",
							"How often the worker runs a billing pass (also at start-up).",
							NULL, &tn_billing_interval_s, 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.billing_batch_size",
							"Due numbers billed per batch (one short transaction per batch).",
							NULL, &tn_billing_batch_size, 2000, 1, 10000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.clock_skew_warning_ms",
							"Skew between Twilio's clock and this server's beyond which the worker warns (0: never).",
							NULL, &tn_clock_skew_warning_ms, 5000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.grace_period",
							"How long a past-due number is kept before it is released.",
							NULL, &tn_grace_period_s, 7 * 24 * 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.queue_max_attempts",
							"Attempts of a queued job before it becomes a dead letter.",
							NULL, &tn_queue_max_attempts, 10, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.queue_retry_base_ms",
							"First retry delay of a failed queued job; it doubles per attempt, jittered.",
							NULL, &tn_queue_retry_base_ms, 1000, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("twilio_numbers.queue_retry_max_ms",
							"Longest delay between two attempts of a queued job.",
							NULL, &tn_queue_retry_max_ms, 3600000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomBoolVariable("twilio_numbers.pause_billing",
							 "Pauses the worker's billing passes (numbers_run_billing by hand still runs).",
							 NULL, &tn_pause_billing, false, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("twilio_numbers.pause_writes",
							 "Pauses every change at Twilio but the undoing of rolled-back purchases and orders.",
							 "Purchases, updates, trunks, transfers, hosted orders and adoptions refuse; releases "
							 "are accepted and wait in the queue with re-syncs; compensations still run.",
							 &tn_pause_writes, false, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("twilio_numbers.follow_promotion",
							 "A promoted standby of this cluster acts at Twilio on its own (HA clusters).",
							 "Set it on every node of a cluster whose failovers a manager such as Patroni runs, "
							 "never on a cluster restored from a backup.",
							 &tn_follow_promotion, false, PGC_SIGHUP, 0, NULL, NULL, NULL);

	/*
	 * Postmaster settings exist only when the library is preloaded: PostgreSQL
	 * refuses to create them later, and without preloading there is no shared
	 * memory to size and no worker to place.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("twilio_numbers.call_log_size",
								"Entries kept in the Twilio call log (shared memory ring).",
								NULL, &tn_call_log_size, 1000, 16, 1000000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("twilio_numbers.database",
								   "Database in which the background worker runs (where the extension is installed).",
								   NULL, &tn_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("twilio_numbers.queue_workers",
								"Background workers that run queued jobs (releases, compensations, re-syncs, polls) side by side.",
								"Each takes a slot of max_worker_processes.",
								&tn_queue_workers, 4, 1, 64,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("twilio_numbers.max_inflight",
								"Purchases and changes that may be in flight at once (shared memory slots).",
								NULL, &tn_max_inflight, 1024, 16, 1000000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}

	credentials_init(process_shared_preload_libraries_in_progress);
	drop_guard_init();

	MarkGUCPrefixReserved("twilio_numbers");
}

void
_PG_init(void)
{
	define_settings();

	if (!process_shared_preload_libraries_in_progress)
		return;

	tn_preloaded = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shared_memory;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tn_shmem_startup;

	/* no worker in a binary upgrade: nothing may run against half a cluster */
	if (!IsBinaryUpgrade)
	{
		register_worker("worker_main", "twilio_numbers worker", "twilio_numbers worker", 5, 0);
		register_worker("recorder_main", "twilio_numbers attempt recorder", "twilio_numbers attempt recorder", 1, 0);
		/* the pool that drains work_queue (worker.c's runner_main) */
		for (int i = 0; i < tn_queue_workers; i++)
			register_worker("runner_main", psprintf("twilio_numbers queue runner %d", i + 1),
							"twilio_numbers queue runner", 1, i);
	}
}

PG_FUNCTION_INFO_V1(tn_library_version_sql);

/* _library_version(): the version this library was built as (numbers_version). */
Datum
tn_library_version_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(EXTVERSION));
}
