-- Tell API processes that a task ended, so that a client waiting on it
-- (`Prefer: wait`, `?wait=`) gets its answer at once.
CREATE FUNCTION errand_notify_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_ended', replace(NEW.token::text, '-', ''));
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_ended
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.status IN ('completed', 'failed', 'cancelled', 'dropped'))
    EXECUTE FUNCTION errand_notify_ended();
