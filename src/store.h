/*
 * store.h — the C–SQL boundary (store.c): every statement the C code runs
 * against the extension's tables, each a call of a function defined in
 * sql/schema/ beside the tables it guards, with typed arguments.
 *
 * Callers are SPI connected.  No other C file names a table.
 */
#ifndef TWILIO_NUMBERS_STORE_H
#define TWILIO_NUMBERS_STORE_H

#include "postgres.h"
#include "executor/spi.h"

/*
 * Run one call, "SELECT ... FROM twilio_numbers.f($1, ...)", with its
 * arguments; a NULL in nulls means none is null.  Returns the rows
 * (SPI_processed, SPI_tuptable).  Errors name the function called.
 */
extern uint64 store_call(const char *call, int nargs, const Oid *types, const Datum *args,
						 const char *nulls, bool read_only, long limit);

/* Column n (1-based) of row i of the last call: a text copy (NULL when null). */
extern char *store_text(uint64 i, int n);
/* Column n of row i as a Datum; *isnull says whether it was null. */
extern Datum store_datum(uint64 i, int n, bool *isnull);

/* ---- the work queue and its jobs (sql/schema/queue.sql) ---- */


/* ---- purchases, attempts, hosted orders, numbers changed in a transaction ---- */


/* ---- reconcile (sql/schema/reconcile.sql) ---- */
#include "utils/jsonb.h"

/*
 * A pass's start: the live rows' ids (int8[]), the open attempts' (int8[])
 * and the managed Twilio accounts (text[]), copied into the caller's memory;
 * an empty work table for the listing.
 */
extern void store_reconcile_begin(const char *main_account, Datum *live, Datum *attempts, Datum *accounts);
/* One page of a listing into the work table; returns how many numbers it held. */
extern int	store_reconcile_listed(Jsonb *page);
/*
 * The live rows no listing showed: *sids and *homes (their Twilio accounts),
 * palloc'd in the caller's memory; returns how many.
 */
extern int	store_reconcile_unseen(Datum live, const char *main_account, char ***sids, char ***homes);
/* What the look-up of an unseen row found (NULL: the look-up failed). */
extern void store_reconcile_found(const char *sid, Jsonb *resource);
/*
 * Compare and act (_reconcile); returns the drift rows it recorded, *n of
 * them (an SPI tuple table: the caller frees it or SPI_finish does).
 */
extern SPITupleTable *store_reconcile_compare(Datum live, Datum listed, Jsonb *failed, Datum attempts,
											  const char *main_account, const char *epoch, uint64 *n);


/* ---- addresses, bundles, Messaging Services, prices ---- */


#endif							/* TWILIO_NUMBERS_STORE_H */
