/*
 * search_reply.h — a search reply read straight into rows (search_reply.c).
 */
#ifndef TWILIO_NUMBERS_SEARCH_REPLY_H
#define TWILIO_NUMBERS_SEARCH_REPLY_H

#include "postgres.h"
#include "nodes/execnodes.h"

#include "pricing.h"

extern bool search_reply_to_rows(char *body, size_t len, ReturnSetInfo *rsinfo,
								 const char *number_type, const char *iso,
								 const CustomerPrice *price);

#endif							/* TWILIO_NUMBERS_SEARCH_REPLY_H */
