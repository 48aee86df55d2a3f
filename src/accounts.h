/*
 * accounts.h — customer accounts and their Twilio accounts (accounts.c).
 */
#ifndef TWILIO_NUMBERS_ACCOUNTS_H
#define TWILIO_NUMBERS_ACCOUNTS_H

#include "postgres.h"

/* A customer account, as purchases and hosted orders read it. */
typedef struct Account
{
	int64		account_id;
	char	   *currency;
	char	   *status;
	char	   *twilio_account_sid; /* NULL: the main account */
} Account;

extern void accounts_load(int64 account_id, Account *acct);
extern void accounts_load_active(int64 account_id, Account *acct, const char *only_active);
extern const char *accounts_twilio_sid(const Account *acct);

#endif							/* TWILIO_NUMBERS_ACCOUNTS_H */
