-- A task's end is announced (NOTIFY errand_ended) only when something
-- waits for it: a client holding a request open on it (`?wait=`,
-- `Prefer: wait`), which marks it `watched` before it starts waiting
-- (task_watch.sql), or the callback outbox (a task with a callback_url).
-- Most tasks end with nobody waiting, and a notification per ended row was
-- the largest part of writing a batch of ends.
ALTER TABLE tasks ADD COLUMN watched boolean NOT NULL DEFAULT false;

DROP TRIGGER tasks_notify_ended ON tasks;
CREATE TRIGGER tasks_notify_ended
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN ((NEW.watched OR NEW.callback_url IS NOT NULL)
                       AND OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.status IN ('completed', 'failed', 'cancelled', 'dropped'))
    EXECUTE FUNCTION errand_notify_ended();

-- A heartbeat changes only `lease_expires_at`, and progress only its two
-- columns: with none of them indexed, and room left on each page, Postgres
-- writes such updates in place (HOT: no index entries, less WAL, less
-- vacuum). The rescuer finds expired leases among the running tasks
-- through tasks_running_queue instead: there are only as many running
-- tasks as there are worker slots.
DROP INDEX tasks_running_lease;
ALTER TABLE tasks SET (fillfactor = 90);
