-- A job's wake-up carries the sending connection's instance tag (the session setting
-- `switchboard.instance`, set by the gateway's pool), so that the instance that queued the job,
-- which already woke its own workers, passes over its own notification.
CREATE OR REPLACE FUNCTION switchboard_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], coalesce(current_setting('switchboard.instance', true), ''));
    RETURN NULL;
END
$$;
