/*
 * errcodes.h — the SQLSTATEs of the project class TN, and the schema's name (README "Errors").
 */
#ifndef TWILIO_NUMBERS_ERRCODES_H
#define TWILIO_NUMBERS_ERRCODES_H

#include "postgres.h"

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
/* a copy of the database (restored, cloned, promoted) that may not act at Twilio */
#define ERRCODE_TN_HELD_COPY				MAKE_SQLSTATE('T','N','0','2','0')

#endif							/* TWILIO_NUMBERS_ERRCODES_H */
