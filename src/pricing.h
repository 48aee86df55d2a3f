/*
 * pricing.h — Twilio's prices, cached, and the customer's prices (pricing.c).
 */
#ifndef TWILIO_NUMBERS_PRICING_H
#define TWILIO_NUMBERS_PRICING_H

#include "postgres.h"

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

#endif							/* TWILIO_NUMBERS_PRICING_H */
