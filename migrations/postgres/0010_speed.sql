-- Speed. A task no other task depends on (most of them) skips the
-- dependency trigger altogether: `has_dependents` is set in the
-- transaction that gives it its first child (task_dependencies_insert.sql).
ALTER TABLE tasks ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
UPDATE tasks SET has_dependents = true
WHERE id IN (SELECT parent_id FROM task_dependencies);

DROP TRIGGER tasks_settle_dependents ON tasks;
CREATE TRIGGER tasks_settle_dependents
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.has_dependents
                       AND OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.status IN ('completed', 'failed', 'cancelled', 'dropped'))
    EXECUTE FUNCTION errand_settle_dependents();

-- New tasks wake workers once per statement, not once per row: a batch of
-- a thousand is one trigger call and one notification per queue. (Tasks
-- that become runnable by an update still wake workers row by row.)
DROP TRIGGER tasks_notify_queued ON tasks;
CREATE TRIGGER tasks_notify_queued
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION errand_notify_queued();

CREATE FUNCTION errand_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_queued', q.queue)
    FROM (SELECT DISTINCT queue FROM inserted WHERE status = 'queued') q;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_inserted
    AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
    EXECUTE FUNCTION errand_notify_inserted();
