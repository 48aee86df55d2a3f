/*
 * addresses.h — customers' Twilio Addresses (addresses.c).
 */
#ifndef TWILIO_NUMBERS_ADDRESSES_H
#define TWILIO_NUMBERS_ADDRESSES_H

#include "postgres.h"

extern char *addresses_copy_to(const char *address_sid, int64 to_id, const char *from_sid, const char *to_sid);

#endif							/* TWILIO_NUMBERS_ADDRESSES_H */
