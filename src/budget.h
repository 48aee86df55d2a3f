/*
 * budget.h — the cluster's budget of requests in flight to Twilio (budget.c).
 */
#ifndef TWILIO_NUMBERS_BUDGET_H
#define TWILIO_NUMBERS_BUDGET_H

#include "postgres.h"

/* How a request that held a slot ended, for the adaptive window. */
typedef enum BudgetOutcome
{
	BUDGET_ANSWERED,			/* a reply other than 429 */
	BUDGET_THROTTLED,			/* 429: Twilio says the account has too many */
	BUDGET_NO_REPLY				/* a transport failure: says nothing of the limit */
} BudgetOutcome;

extern Size budget_shmem_size(void);
extern void budget_shmem_init(void);
extern void budget_acquire(void);
extern bool budget_try_acquire(void);
extern void budget_release(BudgetOutcome outcome);

#endif							/* TWILIO_NUMBERS_BUDGET_H */
