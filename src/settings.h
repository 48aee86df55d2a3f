/*
 * settings.h — the settings under twilio_numbers.*, named after them (module.c defines and registers them).
 */
#ifndef TWILIO_NUMBERS_SETTINGS_H
#define TWILIO_NUMBERS_SETTINGS_H

#include "postgres.h"

extern char *tn_api_url;
extern char *tn_pricing_url;
extern char *tn_trunking_url;
extern char *tn_numbers_url;
extern char *tn_messaging_url;
/*
 * The credentials settings as set; what requests use is credentials.c's
 * (the credentials file, when one is set): tn_account_sid and the others
 * read the credentials in use.
 */
extern char *tn_account_sid_setting;
extern char *tn_auth_token_setting;
extern char *tn_api_key_setting;
extern char *tn_api_secret_setting;
extern const char *credentials_account_sid(void);
extern const char *credentials_auth_token(void);
extern const char *credentials_api_key(void);
extern const char *credentials_api_secret(void);
#define tn_account_sid (credentials_account_sid())
#define tn_auth_token (credentials_auth_token())
#define tn_api_key (credentials_api_key())
#define tn_api_secret (credentials_api_secret())
extern char *tn_ca_file;
extern int	tn_timeout_ms;
extern int	tn_connect_timeout_ms;
extern int	tn_max_retries;
extern int	tn_retry_backoff_ms;
extern int	tn_retry_max_wait_ms;
extern double tn_markup_percent;
extern int	tn_pricing_ttl_s;
extern int	tn_search_reuse_s;
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
extern int	tn_clock_skew_warning_ms;
extern bool tn_follow_promotion;
extern bool tn_pause_billing;
extern bool tn_pause_writes;
extern int	tn_max_concurrent_requests;
extern int	tn_queue_workers;

/* true when loaded through shared_preload_libraries (shared memory exists) */
extern bool tn_preloaded;

#endif							/* TWILIO_NUMBERS_SETTINGS_H */
