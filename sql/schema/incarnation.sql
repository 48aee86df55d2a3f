--------------------------------------------------------------------------
-- Incarnation: which copy of the database acts at Twilio
-- (docs/operations.md, "Copies of the database")
--------------------------------------------------------------------------

-- The one incarnation allowed to act at Twilio: the cluster's system
-- identifier, WAL timeline and database (the epoch of purchase_attempts).
-- pg_dump carries this row; a database where the epoch now differs — a dump
-- restored elsewhere, a physical backup recovered to a new timeline, a
-- clone — is a held copy: nothing but GETs reaches Twilio from it until a
-- DBA makes it live (numbers_make_live) or detaches it for good
-- (numbers_detach).  state: 'live'; 'restoring' (created by a restore, whose
-- own row replaces it; a DBA makes it live if none comes); 'detached'.
CREATE TABLE incarnation (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    state             text NOT NULL CHECK (state IN ('live', 'restoring', 'detached')),
    system_identifier text NOT NULL,
    timeline          integer NOT NULL,
    database_oid      oid NOT NULL,
    database_name     text NOT NULL,
    since             timestamptz NOT NULL DEFAULT now(),
    history           jsonb NOT NULL DEFAULT '[]'
);
COMMENT ON TABLE incarnation IS
  'The incarnation (system identifier, timeline, database) allowed to act at Twilio; any other is a held copy.';

-- One row: a row inserted (by CREATE EXTENSION, or by a restore's COPY,
-- which brings the original's) replaces the one there.
CREATE FUNCTION _incarnation_replace() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM twilio_numbers.incarnation;
    RETURN NEW;
END $$;
CREATE TRIGGER incarnation_one_row BEFORE INSERT ON incarnation
FOR EACH ROW EXECUTE FUNCTION _incarnation_replace();
SELECT pg_catalog.pg_extension_config_dump('incarnation', '');

-- CREATE EXTENSION makes this database live, unless it runs inside a
-- restore (pg_dump's and pg_restore's scripts turn row_security off): then it waits,
-- held, for the dumped row.
INSERT INTO incarnation (state, system_identifier, timeline, database_oid, database_name)
SELECT CASE WHEN current_setting('row_security') = 'off' THEN 'restoring' ELSE 'live' END,
       e[1], e[2]::integer, e[3]::oid, current_database()
FROM string_to_array(_epoch(), ':') e;

-- live, held or detached, now.  A promoted standby (same system and
-- database, a later timeline) follows its promotion when p_follow
-- (twilio_numbers.follow_promotion): it becomes the live incarnation, and
-- the attempts it received from the old primary count as its own, settled
-- as after a crash restart.
CREATE FUNCTION _incarnation_status(p_follow boolean) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.incarnation;
    e text[] := string_to_array(twilio_numbers._epoch(), ':');
    old_epoch text;
BEGIN
    SELECT * INTO r FROM twilio_numbers.incarnation;
    IF NOT FOUND OR r.state = 'restoring' THEN
        RETURN 'held';
    ELSIF r.state = 'detached' THEN
        RETURN 'detached';
    ELSIF r.system_identifier <> e[1] OR r.database_oid <> e[3]::oid THEN
        RETURN 'held';
    ELSIF r.timeline = e[2]::integer THEN
        RETURN 'live';
    ELSIF NOT p_follow OR e[2]::integer < r.timeline OR pg_is_in_recovery() THEN
        RETURN 'held';
    END IF;
    old_epoch := format('%s:%s:%s', r.system_identifier, r.timeline, r.database_oid);
    UPDATE twilio_numbers.incarnation
    SET timeline = e[2]::integer, since = now(),
        history = history || jsonb_build_object('epoch', old_epoch, 'until', now(),
                                                'then', 'followed a promotion (follow_promotion)')
    WHERE timeline = r.timeline;
    IF FOUND THEN
        UPDATE twilio_numbers.purchase_attempts SET recorded_in = twilio_numbers._epoch()
        WHERE state = 'open' AND recorded_in = old_epoch;
        RAISE LOG 'twilio_numbers: database "%" follows its promotion from timeline % to %; the attempts of timeline % are settled as after a crash restart',
            current_database(), r.timeline, e[2], r.timeline;
    END IF;
    RETURN 'live';
END $$;

-- What the database is, and what it was live as (DBA, reporting role).
CREATE FUNCTION numbers_incarnation(
    OUT status text, OUT state text,
    OUT live_system_identifier text, OUT live_timeline integer, OUT live_database_oid oid,
    OUT live_database_name text, OUT live_since timestamptz,
    OUT this_system_identifier text, OUT this_timeline integer, OUT this_database_oid oid,
    OUT this_database_name text, OUT history jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT CASE WHEN i.state = 'detached' THEN 'detached'
            WHEN i.state = 'live' AND i.system_identifier = e[1] AND i.timeline = e[2]::integer
                 AND i.database_oid = e[3]::oid THEN 'live'
            WHEN i.state = 'live' AND i.system_identifier = e[1] AND i.database_oid = e[3]::oid
                 AND i.timeline < e[2]::integer AND current_setting('twilio_numbers.follow_promotion', true) = 'on'
                 THEN 'live (following a promotion)'
            ELSE 'held copy' END,
       i.state, i.system_identifier, i.timeline, i.database_oid, i.database_name, i.since,
       e[1], e[2]::integer, e[3]::oid, current_database(), i.history
FROM string_to_array(twilio_numbers._epoch(), ':') e
LEFT JOIN twilio_numbers.incarnation i ON true
$$;
COMMENT ON FUNCTION numbers_incarnation IS
  'Whether this database is the live incarnation at Twilio, a held copy or detached; what it was live as and what it is now.';

-- What the database was live as and what it is now, in words, for the
-- worker's and the functions' messages (numbers_incarnation's live_ and
-- this_ columns).
CREATE FUNCTION _incarnation_described() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT format('it was live as system %s, timeline %s, database %s (%s); this is system %s, '
                  'timeline %s, database %s (%s)', i.system_identifier, i.timeline, i.database_oid,
                  i.database_name, e[1], e[2]::integer, e[3]::oid, current_database())
    FROM string_to_array(twilio_numbers._epoch(), ':') e
    LEFT JOIN twilio_numbers.incarnation i ON true;
END;

-- A DBA makes this copy the incarnation that acts at Twilio: the queue runs,
-- reconcile acts, billing runs.  The attempts recorded by the original stay
-- another epoch's: what they may have bought is reported, never released.
CREATE FUNCTION numbers_make_live() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.incarnation;
    e text[] := string_to_array(twilio_numbers._epoch(), ':');
    was text;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'a standby server cannot be made live'
            USING ERRCODE = '25006', HINT = 'Run it on the primary after the promotion.';
    END IF;
    SELECT * INTO r FROM twilio_numbers.incarnation FOR UPDATE;
    IF r.state = 'detached' THEN
        RAISE EXCEPTION 'this database was detached from Twilio for good'
            USING ERRCODE = 'TN020',
                  DETAIL = format('numbers_detach() detached it at %s.', r.since),
                  HINT = 'A detached copy never acts at Twilio again; restore a new copy to make one live.';
    END IF;
    IF FOUND AND r.state = 'live' AND r.system_identifier = e[1] AND r.timeline = e[2]::integer
       AND r.database_oid = e[3]::oid THEN
        RETURN format('already live as system %s, timeline %s, database %s', e[1], e[2], current_database());
    END IF;
    was := CASE WHEN FOUND THEN format('%s:%s:%s (%s, %s)', r.system_identifier, r.timeline, r.database_oid,
                                       r.database_name, r.state) END;
    INSERT INTO twilio_numbers.incarnation (state, system_identifier, timeline, database_oid, database_name, history)
    VALUES ('live', e[1], e[2]::integer, e[3]::oid, current_database(),
            coalesce(r.history, '[]') || jsonb_build_object('epoch', was, 'until', now(),
                                                            'then', 'made live by numbers_make_live()'));
    PERFORM twilio_numbers._wake_worker_at_commit();
    RETURN format('live as system %s, timeline %s, database %s (was %s)', e[1], e[2], current_database(),
                  coalesce(was, 'nothing'));
END $$;
COMMENT ON FUNCTION numbers_make_live IS
  'DBA: make this copy of the database the one that acts at Twilio (the original must be stopped or detached first).';

-- A DBA detaches a held copy from Twilio for good (staging, a restore
-- drill): its rows stay as they were copied, marked by this row; nothing
-- but GETs ever reaches Twilio from it and its workers stay idle.
CREATE FUNCTION numbers_detach() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r twilio_numbers.incarnation;
    status text := twilio_numbers._incarnation_status(false);
BEGIN
    IF status = 'live' THEN
        RAISE EXCEPTION 'this database is the live incarnation at Twilio; it cannot be detached'
            USING ERRCODE = '55000',
                  HINT = 'Detach held copies only: numbers_incarnation() says which this is.';
    END IF;
    SELECT * INTO r FROM twilio_numbers.incarnation FOR UPDATE;
    UPDATE twilio_numbers.incarnation
    SET state = 'detached', since = now(),
        history = history || jsonb_build_object('epoch', format('%s:%s:%s', r.system_identifier, r.timeline,
                                                                r.database_oid),
                                                'until', now(), 'then', 'detached by numbers_detach()');
    RETURN format('detached: database %s never acts at Twilio again; its rows are the copy of %s (%s)',
                  current_database(), r.database_name, r.system_identifier);
END $$;
COMMENT ON FUNCTION numbers_detach IS
  'DBA: detach a held copy from Twilio for good (its rows kept, marked by the incarnation row).';
