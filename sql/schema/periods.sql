--------------------------------------------------------------------------
-- Billing periods and proration (the documented rule)
--------------------------------------------------------------------------

-- The start of the k-th period of a number whose periods start on
-- first_start and are anchored to anchor_day: the anchor day of the k-th
-- month after, clamped to that month's last day (Jan 31 -> Feb 28/29 ->
-- Mar 31).  k = 0 is first_start itself.
CREATE FUNCTION _period_start(first_start date, anchor_day integer, k integer) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (date_trunc('month', first_start::timestamp) + make_interval(months => k))::date
       + (least(anchor_day,
                extract(day FROM date_trunc('month', first_start::timestamp) + make_interval(months => k + 1)
                                 - interval '1 day')::integer)
          - 1);
-- (not STRICT, on timestamp rather than timestamptz: so that it is inlined)

-- The end of a period that starts on period_start: the start of the next.
CREATE FUNCTION period_end(period_start date, anchor_day integer) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN twilio_numbers._period_start(period_start, anchor_day, 1);
COMMENT ON FUNCTION period_end IS
  'End of a billing period: same day next month, clamped to month end, anchor day kept (Jan 31 -> Feb 28 -> Mar 31).';

-- Refund on release: the unused whole UTC days of the period, the release
-- day counted as used, rounded half-up to cents.
CREATE FUNCTION prorated_refund(monthly_price numeric, period_start date, period_end date, release_day date)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN release_day >= period_end - 1 THEN 0.00
            ELSE round(monthly_price * (period_end - greatest(release_day, period_start) - 1)
                       / (period_end - period_start), 2)
       END;
COMMENT ON FUNCTION prorated_refund IS
  'round(monthly_price * days_left / days_in_period, 2), whole UTC days, the release day counted as used.';
