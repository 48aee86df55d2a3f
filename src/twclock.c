/*
 * twclock.c — Twilio's clock, not ours.
 *
 * Whether a resource found at Twilio can have been created by one of our
 * attempts is judged by time: Twilio's date_created against the attempt's
 * start and deadline, which are this database's clock.  The two clocks may
 * disagree (a server without NTP drifts by minutes, a mis-set one by hours),
 * so the offset between them is measured from every reply's Date header:
 * Twilio's clock when it sent the reply (to the second) against ours while
 * we waited for it.  Each backend keeps its own latest measurement — the
 * judgements use it, and every judgement follows a reply (the look-up, the
 * listing), so it is always fresh — and shared memory keeps the latest of
 * any process for the twilio_clock view.
 *
 * A skew beyond clock_skew_warning_ms starts an "episode": the worker logs
 * one WARNING when it begins and one LOG line when the clocks agree again
 * (within half the threshold).  Backends only note; they never warn their
 * clients, whose sessions must not change with the server's clock.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "twclock.h"
#include "settings.h"

/* how long a precise measurement is preferred to a newer, vaguer one */
#define TWCLOCK_KEEP_PRECISE_US (60 * USECS_PER_SEC)

/* the judgements' margin around a measured offset, and without one */
#define TWCLOCK_MARGIN_US (30 * USECS_PER_SEC)
#define TWCLOCK_UNMEASURED_MARGIN_US (5 * 60 * USECS_PER_SEC)

/* One measurement: Twilio's clock minus ours, give or take uncertainty. */
typedef struct ClockSample
{
	bool		valid;
	int64		offset_us;
	int64		uncertainty_us;
	TimestampTz measured_at;	/* our clock */
	int			pid;
} ClockSample;

typedef struct ClockShared
{
	slock_t		mutex;
	ClockSample latest;
	int64		samples;
	bool		skewed;			/* an episode of skew is on */
	bool		warned;			/* ... and the worker logged its WARNING */
	TimestampTz skewed_since;
	int64		worst_us;		/* the largest skew of the episode */
	int64		episodes;
} ClockShared;

static ClockShared *shared = NULL;
static ClockSample mine = {false};

Size
twclock_shmem_size(void)
{
	return MAXALIGN(sizeof(ClockShared));
}

void
twclock_shmem_init(void)
{
	bool		found;

	shared = ShmemInitStruct("twilio_numbers Twilio clock", twclock_shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(ClockShared));
		SpinLockInit(&shared->mutex);
	}
}

/* Should s replace old?  Newer does, unless old is recent and much more precise. */
static bool
better(const ClockSample *s, const ClockSample *old)
{
	if (!old->valid)
		return true;
	if (s->measured_at - old->measured_at > TWCLOCK_KEEP_PRECISE_US)
		return true;
	return s->uncertainty_us <= old->uncertainty_us + USECS_PER_SEC;
}

/*
 * A reply said Twilio's time was twilio_date (whole seconds, when it sent
 * the reply); we sent the request at sent_at and got the headers at
 * received_at.  Twilio's clock minus ours then lies in
 * [date - received_at, date + 1 s - sent_at]: keep its middle and half-width.
 * Called after the transfer, never inside libcurl; no palloc, no ereport.
 */
void
twclock_note(time_t twilio_date, TimestampTz sent_at, TimestampTz received_at)
{
	ClockSample s;
	TimestampTz twilio = time_t_to_timestamptz(twilio_date);
	int64		lo;
	int64		hi;
	int64		threshold = (int64) tn_clock_skew_warning_ms * 1000;

	if (received_at < sent_at)
		received_at = sent_at;
	lo = twilio - received_at;
	hi = twilio + USECS_PER_SEC - sent_at;
	s.valid = true;
	s.offset_us = lo + (hi - lo) / 2;
	s.uncertainty_us = (hi - lo) / 2;
	s.measured_at = received_at;
	s.pid = MyProcPid;
	if (better(&s, &mine))
		mine = s;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->samples++;
	if (better(&s, &shared->latest))
	{
		int64		skew = Abs(s.offset_us);

		shared->latest = s;
		if (!shared->skewed && threshold > 0 && skew - s.uncertainty_us > threshold)
		{
			shared->skewed = true;
			shared->warned = false;
			shared->skewed_since = received_at;
			shared->worst_us = skew;
			shared->episodes++;
		}
		else if (shared->skewed && skew > shared->worst_us)
			shared->worst_us = skew;
		else if (shared->skewed && (threshold == 0 || skew + s.uncertainty_us < threshold / 2))
			shared->skewed = false;
	}
	SpinLockRelease(&shared->mutex);
}

/*
 * Twilio's clock minus ours, as this process last measured it (else as any
 * process did); false when nobody has measured it yet.
 */
bool
twclock_offset(int64 *offset_us, int64 *uncertainty_us)
{
	ClockSample s = mine;

	if (!s.valid && shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		s = shared->latest;
		SpinLockRelease(&shared->mutex);
	}
	if (!s.valid)
		return false;
	*offset_us = s.offset_us;
	*uncertainty_us = s.uncertainty_us;
	return true;
}

/*
 * The worker's side: one WARNING when an episode of skew begins, one LOG
 * line when it ends.  Cheap (a spinlock) when nothing changed.
 */
void
twclock_report_skew(void)
{
	static bool told_skewed = false;
	bool		warn = false;
	bool		over = false;
	ClockSample s;
	int64		worst;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	s = shared->latest;
	worst = shared->worst_us;
	if (shared->skewed && !shared->warned)
	{
		shared->warned = true;
		warn = true;
	}
	else if (!shared->skewed && told_skewed)
		over = true;
	SpinLockRelease(&shared->mutex);

	if (warn)
	{
		told_skewed = true;
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("twilio_numbers: Twilio's clock is %.1f s %s this server's",
						(double) Abs(s.offset_us) / USECS_PER_SEC, s.offset_us > 0 ? "ahead of" : "behind"),
				 errdetail("Measured from the Date header of a reply (within %.1f s); the threshold is %d ms. "
						   "Judgements of what our requests created use Twilio's clock, corrected by this offset.",
						   (double) s.uncertainty_us / USECS_PER_SEC, tn_clock_skew_warning_ms),
				 errhint("Keep this server's clock synchronised (NTP): see twilio_numbers.twilio_clock.")));
	}
	else if (over)
	{
		told_skewed = false;
		ereport(LOG,
				(errmsg("twilio_numbers: Twilio's clock agrees with this server's again (offset %.1f s; "
						"the episode's largest was %.1f s)",
						(double) s.offset_us / USECS_PER_SEC, (double) worst / USECS_PER_SEC)));
	}
}

PG_FUNCTION_INFO_V1(tn_twilio_clock_offset);

/* _twilio_clock_offset(): Twilio's clock minus ours (interval), NULL if never measured. */
Datum
tn_twilio_clock_offset(PG_FUNCTION_ARGS)
{
	int64		offset;
	int64		uncertainty;
	Interval   *iv;

	if (!twclock_offset(&offset, &uncertainty))
		PG_RETURN_NULL();
	iv = palloc0(sizeof(Interval));
	iv->time = offset;
	PG_RETURN_INTERVAL_P(iv);
}

PG_FUNCTION_INFO_V1(tn_twilio_clock_margin);

/*
 * _twilio_clock_margin(): how far a Twilio time, corrected by the offset,
 * may still lie outside an attempt's window — the measurement's uncertainty
 * and a margin for Twilio's own servers; five minutes when never measured.
 */
Datum
tn_twilio_clock_margin(PG_FUNCTION_ARGS)
{
	int64		offset;
	int64		uncertainty;
	Interval   *iv = palloc0(sizeof(Interval));

	if (twclock_offset(&offset, &uncertainty))
		iv->time = TWCLOCK_MARGIN_US + uncertainty;
	else
		iv->time = TWCLOCK_UNMEASURED_MARGIN_US;
	PG_RETURN_INTERVAL_P(iv);
}

PG_FUNCTION_INFO_V1(tn_twilio_clock_info);

/* twilio_clock_info(): the latest measurement of any process, and the skew episodes. */
Datum
tn_twilio_clock_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {false};
	ClockSample s = mine;
	int64		samples = 0;
	bool		skewed = false;
	TimestampTz since = 0;
	int64		episodes = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		s = shared->latest;
		samples = shared->samples;
		skewed = shared->skewed;
		since = shared->skewed_since;
		episodes = shared->episodes;
		SpinLockRelease(&shared->mutex);
	}
	if (s.valid)
	{
		Interval   *iv = palloc0(sizeof(Interval));

		iv->time = s.offset_us;
		values[0] = IntervalPGetDatum(iv);
		values[1] = Float8GetDatum((double) s.offset_us / 1000.0);
		values[2] = Float8GetDatum((double) s.uncertainty_us / 1000.0);
		values[3] = TimestampTzGetDatum(s.measured_at);
		values[4] = Int32GetDatum(s.pid);
	}
	else
		nulls[0] = nulls[1] = nulls[2] = nulls[3] = nulls[4] = true;
	values[5] = Int64GetDatum(samples);
	values[6] = BoolGetDatum(skewed);
	values[7] = TimestampTzGetDatum(since);
	nulls[7] = !skewed;
	values[8] = Int64GetDatum(episodes);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
