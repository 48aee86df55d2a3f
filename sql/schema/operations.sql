--------------------------------------------------------------------------
-- Operations: versions and dead letters (README "Operations")
--------------------------------------------------------------------------

-- The version of the library this session loaded (EXTVERSION at build).
CREATE FUNCTION _library_version() RETURNS text
AS 'MODULE_PATHNAME', 'tn_library_version_sql' LANGUAGE C STRICT STABLE;

-- The library's version and the schema's (pg_extension): they differ after
-- a package upgrade until ALTER EXTENSION twilio_numbers UPDATE (or when the
-- server was not restarted after it), and the worker waits then.
CREATE FUNCTION numbers_version(OUT library text, OUT schema text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT twilio_numbers._library_version(), e.extversion
FROM pg_catalog.pg_extension e WHERE e.extname = 'twilio_numbers'
$$;
COMMENT ON FUNCTION numbers_version IS
  'The twilio_numbers library''s version and the installed schema''s; they must be equal for the worker to run.';

-- A DBA puts a dead letter back in the queue (after fixing its cause): it
-- is tried at once, with its attempts counted from zero (_queue_retry_dead).
CREATE FUNCTION numbers_retry_dead_letter(job_id bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF numbers_retry_dead_letter.job_id IS NULL
       OR twilio_numbers._queue_retry_dead(numbers_retry_dead_letter.job_id) = 0 THEN
        RAISE EXCEPTION 'job % is not a dead letter', numbers_retry_dead_letter.job_id
            USING ERRCODE = 'P0002',
                  HINT = 'twilio_numbers.queue_dead_letters lists them (not those a later job has done since).';
    END IF;
    RETURN true;
END $$;
COMMENT ON FUNCTION numbers_retry_dead_letter IS
  'DBA: put one dead letter back in the queue, attempts from zero, tried at once.';

-- ... or all of them (those no later job has done since); returns how many.
CREATE FUNCTION numbers_retry_dead_letters() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN twilio_numbers._queue_retry_dead(NULL);
END $$;
COMMENT ON FUNCTION numbers_retry_dead_letters IS
  'DBA: put every dead letter back in the queue; returns how many.';
