/*
 * compat.h — every PostgreSQL version check of twilio_numbers lives here.
 *
 * The extension targets PostgreSQL 15, 16, 17 and 18 (16 through branches
 * that 15 or 17 take too): a version difference is one #if in one place,
 * never scattered.
 */
#ifndef TWILIO_NUMBERS_COMPAT_H
#define TWILIO_NUMBERS_COMPAT_H

#include "postgres.h"

/*
 * PG 18 replaced pg_attribute_noreturn(), written after a declaration, with
 * pg_noreturn, written before it.  Before 18, pg_attribute_noreturn() is GCC's
 * attribute, which may stand before the declaration too.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/* PG 17 gave extensions named wait events; earlier ones share "Extension". */
#if PG_VERSION_NUM >= 170000
#define TN_HAVE_NAMED_WAIT_EVENTS 1
#endif

/* PG 16 made JSON semantic actions return an error code. */
#if PG_VERSION_NUM >= 160000
#define TN_JSON_ACTION JsonParseErrorType
#define TN_JSON_ACTION_DONE return JSON_SUCCESS
#else
#define TN_JSON_ACTION void
#define TN_JSON_ACTION_DONE return
#endif

/* PG 17 made the JSON lexer context caller-allocatable. */
#if PG_VERSION_NUM >= 170000
#define tn_json_lexer(json, len, escapes) \
	makeJsonLexContextCstringLen(NULL, (json), (len), PG_UTF8, (escapes))
#else
#define tn_json_lexer(json, len, escapes) \
	makeJsonLexContextCstringLen((json), (len), PG_UTF8, (escapes))
#endif

#endif							/* TWILIO_NUMBERS_COMPAT_H */
