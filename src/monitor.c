/*
 * monitor.c — the SQL-callable functions over shared memory: what the
 * worker reports (the worker_status view), the intents in flight (inflight),
 * and the checks SQL functions ask of them (a release's "can the worker take
 * this", "is this number, attempt or SID in flight").
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "change_kinds.h"
#include "errcodes.h"
#include "intents.h"
#include "settings.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(tn_worker_info);

/* worker_info(): what the worker has reported, for the worker_status view. */
Datum
tn_worker_info(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	WorkerStats st;
	int			pid;
	Datum		values[10];
	bool		nulls[10] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!shmem_worker_stats(&st, &pid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("twilio_numbers is not loaded via shared_preload_libraries, so there is no worker"),
				 errhint("Add twilio_numbers to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")));

	values[0] = Int32GetDatum(pid);
	nulls[0] = pid == 0;
	values[1] = CStringGetTextDatum(tn_database);
	values[2] = TimestampTzGetDatum(st.started_at);
	nulls[2] = st.started_at == 0;
	values[3] = Int64GetDatum(st.restarts);
	values[4] = TimestampTzGetDatum(st.last_reconcile_at);
	nulls[4] = st.last_reconcile_at == 0;
	values[5] = Int64GetDatum(st.last_reconcile_findings);
	values[6] = TimestampTzGetDatum(st.last_billing_at);
	nulls[6] = st.last_billing_at == 0;
	values[7] = Int64GetDatum(st.jobs_done);
	values[8] = CStringGetTextDatum(st.last_error);
	nulls[8] = st.last_error[0] == '\0';
	values[9] = TimestampTzGetDatum(st.last_error_at);
	nulls[9] = st.last_error_at == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(tn_inflight);

/* inflight(): the intents, for monitoring. */
Datum
tn_inflight(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Intent	   *copy;
	int			n = 0;

	InitMaterializedSRF(fcinfo, 0);
	n = intents_snapshot(&copy);

	for (int i = 0; i < n; i++)
	{
		Intent	   *it = &copy[i];
		Datum		values[12];
		bool		nulls[12] = {0};

		values[0] = CStringGetTextDatum(change_kind(it->kind)->name);
		values[1] = CStringGetTextDatum(!it->ended ? "in progress" :
										it->committed ? "committed" : "rolled back");
		values[2] = Int32GetDatum(it->pid);
		values[3] = TransactionIdGetDatum(it->xid);
		values[4] = Int64GetDatum(it->account_id);
		nulls[4] = it->account_id == 0;
		values[5] = Int64GetDatum(it->number_id);
		nulls[5] = it->number_id == 0;
		values[6] = CStringGetTextDatum(it->phone);
		values[7] = CStringGetTextDatum(it->sid);
		nulls[7] = it->sid[0] == '\0';
		values[8] = DirectFunctionCall3(numeric_in, CStringGetDatum(psprintf(INT64_FORMAT ".%02d",
																			 it->hold_cents / 100, (int) (it->hold_cents % 100))),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		values[9] = BoolGetDatum(it->posted);
		values[10] = TimestampTzGetDatum(it->started_at);
		values[11] = Int64GetDatum(it->attempt_id);
		nulls[11] = it->attempt_id == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tn_require_worker_sql);

/* _require_worker(): the checks for SQL functions that only queue work (numbers_release). */
Datum
tn_require_worker_sql(PG_FUNCTION_ARGS)
{
	shmem_require_worker_to_queue();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tn_purchase_in_flight_sql);

/* _purchase_in_flight(phone): is a transaction buying it right now? */
Datum
tn_purchase_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(intent_buying(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

PG_FUNCTION_INFO_V1(tn_attempt_in_flight_sql);

/* _attempt_in_flight(attempt_id): is its transaction (or its settling) not over? */
Datum
tn_attempt_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(intents_attempt_in_flight(PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(tn_sid_in_flight_sql);

/* _sid_in_flight(sid): does a transaction in flight (or its settling) know this SID? */
Datum
tn_sid_in_flight_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(intents_sid_in_flight(text_to_cstring(PG_GETARG_TEXT_PP(0)), -1));
}
