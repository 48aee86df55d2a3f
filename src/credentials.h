/*
 * credentials.h — the Twilio credentials in use and the log's secret filter (credentials.c).
 */
#ifndef TWILIO_NUMBERS_CREDENTIALS_H
#define TWILIO_NUMBERS_CREDENTIALS_H

#include "postgres.h"

extern char *tn_credentials_file;

extern void credentials_init(bool preloaded);
extern void credentials_load(void);
extern void credentials_mark_stale(void);
extern const char *credentials_account_sid(void);
extern const char *credentials_auth_token(void);
extern const char *credentials_api_key(void);
extern const char *credentials_api_secret(void);
extern const char *credentials_source(void);

#endif							/* TWILIO_NUMBERS_CREDENTIALS_H */
