/*
 * twilio_numbers.h — the one private header of the extension.
 *
 * Each section below belongs to one source file; the file named in the
 * section heading owns the definitions.  Nothing here is installed.
 */
#ifndef TWILIO_NUMBERS_H
#define TWILIO_NUMBERS_H

#include "postgres.h"

#include "compat.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#define TN_SCHEMA "twilio_numbers"

/*
 * SQLSTATEs of the project class TN (see README "Errors").  Standard codes
 * are used where PostgreSQL has one: 22023 for bad arguments, P0002 for an
 * account or number that is not there, 55000 for missing set-up.
 */
#define ERRCODE_TN_INSUFFICIENT_FUNDS		MAKE_SQLSTATE('T','N','0','0','1')
#define ERRCODE_TN_NUMBER_NOT_AVAILABLE		MAKE_SQLSTATE('T','N','0','0','2')
#define ERRCODE_TN_REGULATORY_REQUIREMENT	MAKE_SQLSTATE('T','N','0','0','3')
#define ERRCODE_TN_TWILIO_AUTH_FAILED		MAKE_SQLSTATE('T','N','0','0','4')
#define ERRCODE_TN_TWILIO_UNREACHABLE		MAKE_SQLSTATE('T','N','0','0','5')
#define ERRCODE_TN_TWILIO_REFUSED			MAKE_SQLSTATE('T','N','0','0','6')
#define ERRCODE_TN_TWILIO_BAD_REPLY			MAKE_SQLSTATE('T','N','0','0','7')
#define ERRCODE_TN_TWILIO_RATE_LIMITED		MAKE_SQLSTATE('T','N','0','0','8')
#define ERRCODE_TN_OUTCOME_UNKNOWN			MAKE_SQLSTATE('T','N','0','0','9')

/* ---- module.c: settings and module start ---------------------------- */

extern char *tn_api_url;
extern char *tn_pricing_url;
extern char *tn_trunking_url;
extern char *tn_numbers_url;
extern char *tn_account_sid;
extern char *tn_auth_token;
extern char *tn_api_key;
extern char *tn_api_secret;
extern char *tn_ca_file;
extern int	tn_timeout_ms;
extern int	tn_connect_timeout_ms;
extern int	tn_max_retries;
extern int	tn_retry_backoff_ms;
extern int	tn_retry_max_wait_ms;
extern double tn_markup_percent;
extern int	tn_pricing_ttl_s;
extern char *tn_database;
extern int	tn_call_log_size;
extern int	tn_max_inflight;
extern int	tn_worker_interval_ms;
extern int	tn_reconcile_interval_s;
extern int	tn_billing_interval_s;
extern int	tn_billing_batch_size;
extern int	tn_grace_period_s;
extern int	tn_queue_max_attempts;
extern int	tn_queue_retry_base_ms;
extern int	tn_queue_retry_max_ms;
extern int	tn_hosted_poll_ms;
extern int	tn_hosted_poll_max_ms;

/* true when loaded through shared_preload_libraries (shared memory exists) */
extern bool tn_preloaded;

/* ---- http.c: the HTTP client ---------------------------------------- */

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
extern const char *http_method_name(HttpMethod method);
extern void http_sleep(long ms);
extern long http_backoff_ms(int n);

/* ---- twilio.c: Twilio's API — URLs, forms, replies, errors ------------ */

typedef enum TwilioHost
{
	TWILIO_API,					/* api.twilio.com /2010-04-01 */
	TWILIO_PRICING,				/* pricing.twilio.com /v1 */
	TWILIO_TRUNKING,			/* trunking.twilio.com /v1 */
	TWILIO_NUMBERS				/* numbers.twilio.com /v2 */
} TwilioHost;

typedef struct TwilioReply
{
	HttpResult	http;
	Jsonb	   *json;			/* parsed body, NULL when empty */
	int			twilio_code;	/* Twilio's error code, 0 if none */
	char	   *twilio_message; /* Twilio's error message, NULL if none */
} TwilioReply;

/* flags for twilio_request, on top of the HTTP_* ones */
#define TWILIO_NO_ERROR		0x100	/* hand every outcome back to the caller */
#define TWILIO_OK_404		0x200	/* a 404 is an answer, not an error */
#define TWILIO_RAW_BODY		0x400	/* a 2xx body is the caller's to parse */

extern void twilio_require_credentials(void);
extern char *twilio_url(TwilioHost host, const char *fmt,...) pg_attribute_printf(2, 3);
extern char *twilio_account_url_for(const char *account_sid, const char *fmt,...) pg_attribute_printf(2, 3);
extern char *twilio_json_text(const TwilioReply *reply);
extern void twilio_form_add(StringInfo form, const char *key, const char *value);
extern void twilio_query_add(StringInfo url, const char *key, const char *value);
extern void twilio_request(HttpMethod method, const char *url, const char *form,
						   int flags, const char *what, TwilioReply *reply);
extern void twilio_error_fields(const char *body, int *code, char **message);
pg_noreturn extern void twilio_raise(const TwilioReply *reply, const char *what);
extern List *twilio_owned_by_phone(const char *account_sid, const char *phone, TwilioReply *reply,
								   bool *ok);
extern bool twilio_release_number(const char *account_sid, const char *sid, char **error);
extern char *tn_describe_failure(const TwilioReply *reply);

/* jsonb access that accepts both Twilio's wire forms and the spec's */
extern JsonbContainer *jb_object(JsonbContainer *obj, const char *key);
extern JsonbContainer *jb_array(JsonbContainer *obj, const char *key);
extern char *jb_text(JsonbContainer *obj, const char *key);
extern bool jb_bool(JsonbContainer *obj, const char *key, bool *isnull);
extern Datum jb_numeric(JsonbContainer *obj, const char *key, bool *isnull);
extern int	jb_array_size(JsonbContainer *arr);
extern bool tn_is_decimal(const char *s, int len);
extern JsonbContainer *jb_array_object(JsonbContainer *arr, int i);

/* ---- validate.c: argument checks done before any HTTP call ------------ */

extern char *tn_check_country(const char *arg, const char *value);
extern const char *tn_check_number_type(const char *value);
extern void tn_check_e164(const char *arg, const char *value);
extern void tn_check_contains(const char *value);
extern void tn_check_url(const char *arg, const char *value);
extern void tn_check_http_method(const char *arg, const char *value);
extern void tn_check_sid(const char *arg, const char *value, const char *prefix);
extern const char *tn_type_path(const char *number_type);
extern const char *tn_type_from_twilio(const char *twilio_type);
extern int	tn_number_type_count(void);
extern const char *tn_number_type_name(int i);
extern char *tn_text_arg(FunctionCallInfo fcinfo, int n);
extern int64 tn_account_arg(FunctionCallInfo fcinfo, int n);
extern void tn_check_friendly_name(const char *value);
extern const char *tn_country_of(const char *phone);
extern const char *tn_nanp_type(const char *phone);

/* ---- config.c: a number's configuration, as purchase and update take it - */

/* The configuration arguments shared by purchase and update (args 2..12). */
typedef struct NumberConfig
{
	char	   *friendly_name;
	char	   *voice_url;
	char	   *voice_method;
	char	   *sms_url;
	char	   *sms_method;
	char	   *status_callback;
	char	   *trunk_sid;
	char	   *address_sid;
	char	   *bundle_sid;
	char	   *identity_sid;
	char	   *emergency_address_sid;
} NumberConfig;

extern void number_config_read(FunctionCallInfo fcinfo, int first, NumberConfig *cfg);
extern void number_config_form(const NumberConfig *cfg, StringInfo form);
extern void number_config_values(const NumberConfig *cfg, const char **values);

/* ---- pricing.c: Twilio's prices, cached, and the customer's prices ---- */

typedef struct CustomerPrice
{
	bool		found;
	Datum		setup_price;	/* numeric */
	Datum		monthly_price;	/* numeric */
	char	   *currency;
} CustomerPrice;

/* the price is allocated in the caller's memory context */
extern void pricing_customer_price(const char *iso_country, const char *number_type,
								   CustomerPrice *price);

/* ---- search_reply.c: a search reply read straight into rows ------------- */

extern bool search_reply_to_rows(char *body, size_t len, ReturnSetInfo *rsinfo,
								 const char *number_type, const char *iso,
								 const CustomerPrice *price);

/* ---- calllog.c: the Twilio call log ----------------------------------- */

extern Size calllog_shmem_size(void);
extern void calllog_shmem_init(void);
extern void calllog_record(HttpMethod method, const char *url, long status,
						   const char *body, double ms, const char *error);

/* ---- shmem.c: intents, fund holds, the worker's latch ----------------- */

/* The kinds of Twilio changes a transaction makes (change_kinds.c). */
#define INTENT_PURCHASE	1		/* a number bought */
#define INTENT_UPDATE	2		/* its configuration changed */
#define INTENT_HOSTED	3		/* a hosted number order filed */
#define INTENT_TRUNK	4		/* assigned to or removed from a SIP trunk */
#define INTENT_TRANSFER	5		/* moved to another Twilio (sub)account */

/* Where an intent's durable attempt record stands (recorder.c). */
#define ATTEMPT_NONE		0	/* no record needed (a configuration change) */
#define ATTEMPT_REQUESTED	1	/* the backend waits for the recorder */
#define ATTEMPT_RECORDED	2	/* committed: attempt_id names the row */
#define ATTEMPT_FAILED		3	/* the recorder could not record it */

/* What a backend waits for the recorder to do about its intent's attempt. */
#define RECORDER_IDLE		0
#define RECORDER_SET_SID	1	/* write what Twilio created (sid) into the row */
#define RECORDER_FAILED		2	/* it could not */

/* A Twilio change made inside a transaction that may still roll back. */
typedef struct Intent
{
	bool		in_use;
	bool		ended;			/* its transaction (or savepoint) is over */
	bool		committed;		/* ... and its change committed */
	bool		posted;			/* the change may have reached Twilio */
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
	char		twilio_account_sid[40]; /* where the number is; a resync's other account */
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

/* What the worker reports about itself (worker_status). */
typedef struct WorkerStats
{
	TimestampTz started_at;
	int64		restarts;		/* starts since the cluster started */
	TimestampTz last_reconcile_at;
	int64		last_reconcile_findings;
	TimestampTz last_billing_at;
	int64		jobs_done;
	TimestampTz last_error_at;
	char		last_error[256];
} WorkerStats;

#define WORKER_NOTE_RECONCILE	1
#define WORKER_NOTE_JOB_DONE	2
#define WORKER_NOTE_JOB_FAILED	3
#define WORKER_NOTE_BILLING		4
#define WORKER_NOTE_ERROR		5

extern void tn_worker_note(int what, int64 count, const char *error);
extern Size tn_shmem_size(void);
extern void tn_shmem_init(void);
extern void tn_require_worker(void);
extern void tn_worker_register(void);
extern void tn_worker_unregister(void);
extern void tn_wake_worker(void);
extern int64 tn_intents_hold(int64 account_id, int n, char **phones, const int64 *hold_cents,
							 int *slots);
extern int64 tn_intents_held(int64 account_id);
extern int	tn_intent_change(int kind, int64 number_id, const char *phone);
extern int	tn_intent_begin(int kind, int64 account_id, int64 number_id, const char *phone);
extern void tn_intent_set_posted(int slot, bool posted);
extern void tn_intent_set_hold(int slot, int64 hold_cents);
extern void tn_intent_set_sid(int slot, const char *sid, const char *account_sid);
extern void tn_intent_get(int slot, Intent *copy);
extern void tn_intent_end(int slot, bool committed);
extern int	tn_intents_ended(Intent *out, int *slots, int max);
extern void tn_intents_free(const int *slots, int n);
extern bool tn_intent_buying(const char *phone);
extern bool tn_sid_in_flight(const char *sid, int except_slot);
extern bool tn_attempt_in_flight(int64 attempt_id);

/* the attempt recorder's side of shared memory (recorder.c uses these) */
extern void tn_recorder_register(void);
extern void tn_recorder_unregister(void);
extern void tn_intents_request_attempts(const int *slots, int n, const char *twilio_account_sid,
										TimestampTz deadline, uint16 config_mask, const char *config_md5);
extern int	tn_intents_attempt_requests(AttemptRequest *out, int max);
extern void tn_intents_attempts_recorded(const AttemptRequest *reqs, const int64 *ids, int n);
extern bool tn_intents_wait_recorded(const int *slots, int n, long timeout_ms);
extern void tn_intents_request_sids(const int *slots, int n);

/* ---- xact.c: transaction callbacks (memory only) ----------------------- */

extern void tn_xact_reserve(int n);
extern void tn_xact_track_intent(int slot, bool creation);
extern void tn_xact_wake_worker_at_commit(void);

/* ---- jobs.c: what the worker does for each kind of queued job ---------- */

typedef struct Job
{
	int64		job_id;
	char	   *kind;
	int64		number_id;		/* 0 when none */
	char	   *phone;
	char	   *sid;
	char	   *account_sid;
	char	   *payload;		/* JSON text */
	int			attempts;
	int64		attempt_id;		/* the purchase attempt it settles, 0 when none */
	TimestampTz created_at;
} Job;

/* What became of a job: done; failed (retried with backoff, counted);
 * or not finished yet (a poll: run again after *again_ms, not a failure). */
typedef enum JobOutcome
{
	JOB_DONE,
	JOB_RETRY,
	JOB_AGAIN
} JobOutcome;

extern JobOutcome tn_job_run(const Job *job, char **error, long *again_ms);
extern bool tn_live_row_owns(const char *sid);
extern void attempt_close(int64 attempt_id, const char *outcome, const char *sid);
extern bool release_number_wherever(const char *home, const char *sid, char **error);
extern void job_enqueue(const char *kind, int64 number_id, const char *phone, const char *sid,
						const char *account_sid, const char *payload, int64 attempt_id);

/* ---- accounts.c: customer accounts and their Twilio accounts ------------ */

/* A customer account, as purchases and hosted orders read it. */
typedef struct Account
{
	int64		account_id;
	char	   *currency;
	char	   *status;
	char	   *twilio_account_sid; /* NULL: the main account */
} Account;

extern void tn_load_account(int64 account_id, Account *acct);

/* ---- hosted.c: hosted number orders ------------------------------------ */

extern JobOutcome tn_job_hosted_poll(const Job *job, char **error, long *again_ms);
extern bool tn_hosted_order_committed(const char *sid);
extern List *hosted_orders_by_phone(const char *account_sid, const char *phone, TwilioReply *reply, bool *ok);
extern bool hosted_order_cancel(const char *account_sid, const char *sid, char **error);

/* ---- change_kinds.c: one entry per kind of Twilio change ---------------- */

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
	/* settle an ended intent of this kind (in the worker's transaction) */
	void		(*settle) (const struct ChangeKind *kind, const Intent *it);
	/* creations: what Twilio holds under the number (*ok false: the look-up failed) */
	List	   *(*look_up) (const char *account_sid, const char *phone, TwilioReply *reply, bool *ok);
	/* creations: does a committed row own this SID (then it is not undone)? */
	bool		(*kept) (const char *sid);
	/* creations: undo at Twilio; true when it is gone */
	bool		(*remove) (const char *account_sid, const char *sid, char **error);
} ChangeKind;

extern const ChangeKind *change_kind(uint8 intent);
extern const ChangeKind *change_kind_undone_by(const char *job_kind);

/* ---- create.c: creating a number or an order at Twilio exactly once ---- */

typedef struct Creation
{
	const ChangeKind *kind;		/* what is created: its look-up after a lost reply */
	int			slot;			/* the intent; its attempt is recorded */
	const char *url;			/* POST here */
	const char *form;
	const char *what;			/* names the request in errors: "buy +14155550100" */
	const char *phone;
	const char *twilio_account_sid; /* the account it is created in */
	bool		post_again;		/* POST again after a look-up that found nothing */
} Creation;

/*
 * The configuration fields a creation may send, as Twilio's resource names
 * them; an attempt records which it sent and their fingerprint, so that a
 * look-up can tell what it created from what someone else did.
 */
#define CREATION_CONFIG_FIELDS 11
extern const char *const creation_config_fields[CREATION_CONFIG_FIELDS];
extern void creation_fingerprint(const char *const *values, uint16 *mask, char *md5);
extern Datum creation_fields_array(uint16 mask);

extern char *twilio_create_once(const Creation *c);
extern bool created_by_attempt(JsonbContainer *r, const char *phone, const char *twilio_account_sid,
							   TimestampTz started, TimestampTz deadline, Datum fields,
							   const char *md5, int except_slot);

/* ---- recorder.c: durable purchase attempts, committed before the request - */

extern PGDLLEXPORT void tn_recorder_main(Datum main_arg);
extern void attempts_record(const int *slots, int n, const char *twilio_account_sid, uint16 config_mask,
							const char *config_md5);
extern char *attempt_epoch(void);
extern void attempts_record_sids(const int *slots, int n);

/* ---- reconcile.c: the database and Twilio compared --------------------- */

extern uint64 tn_reconcile_in_worker(void);

/* ---- worker.c: the background worker ----------------------------------- */

extern PGDLLEXPORT void tn_worker_main(Datum main_arg);

#endif							/* TWILIO_NUMBERS_H */
