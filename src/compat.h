/*
 * compat.h — every PostgreSQL version check of twilio_numbers lives here.
 *
 * The extension targets PostgreSQL 15, 17 and 18, and 16 through branches
 * that 15 or 17 take too; these shims keep 14–18 buildable so that a version
 * difference is one #if in one place, never scattered.
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

/* PG 15 added shmem_request_hook; before it, requests went in _PG_init. */
#if PG_VERSION_NUM >= 150000
#define TN_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* PG 15 renamed SetSingleFuncCall to InitMaterializedSRF. */
#if PG_VERSION_NUM < 150000
#define InitMaterializedSRF(fcinfo, flags) SetSingleFuncCall(fcinfo, flags)
#endif

/* PG 15 renamed EmitWarningsOnPlaceholders to MarkGUCPrefixReserved. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * PG 17 gave extensions named wait events; earlier ones share "Extension".
 * The named one is looked up once per backend and kept (http.c), as
 * worker_spi keeps its own: WaitEventExtensionNew takes a lock and searches
 * shared memory.
 */
#if PG_VERSION_NUM >= 170000
#define TN_HAVE_NAMED_WAIT_EVENTS 1
extern uint32 http_wait_event(void);
extern uint32 budget_wait_event(void);
#define TN_WAIT_EVENT_HTTP http_wait_event()
#define TN_WAIT_EVENT_BUDGET budget_wait_event()
#else
#define TN_WAIT_EVENT_HTTP PG_WAIT_EXTENSION
#define TN_WAIT_EVENT_BUDGET PG_WAIT_EXTENSION
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
