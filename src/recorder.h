/*
 * recorder.h — durable purchase attempts, committed before the request (recorder.c).
 */
#ifndef TWILIO_NUMBERS_RECORDER_H
#define TWILIO_NUMBERS_RECORDER_H

#include "postgres.h"

extern PGDLLEXPORT void recorder_main(Datum main_arg);
extern void recorder_open_attempts(const int *slots, int n, const char *twilio_account_sid, uint16 config_mask,
								   const char *config_md5);
extern char *recorder_epoch(void);
extern void recorder_record_sids(const int *slots, int n);

#endif							/* TWILIO_NUMBERS_RECORDER_H */
