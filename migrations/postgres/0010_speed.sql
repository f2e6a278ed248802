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
