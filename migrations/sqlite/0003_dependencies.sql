-- Dependencies: a task may wait for others (its parents). It stays
-- `waiting` while any parent has not completed, becomes `queued` in the
-- transaction that completes its last parent, and ends `cancelled` in the
-- transaction that ends any parent otherwise (cascading down chains: the
-- store turns on recursive_triggers). The triggers below do both, so that no
-- code path that ends a task can forget.

-- Parents not yet completed; the child is `waiting` while this is above 0.
ALTER TABLE tasks ADD COLUMN pending_parents INTEGER NOT NULL DEFAULT 0
    CONSTRAINT tasks_pending_parents_valid CHECK (pending_parents >= 0);
-- The parents' tokens, as the client gave them (kept when a parent is deleted).
ALTER TABLE tasks ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT tasks_depends_on_is_array CHECK (json_type(depends_on) = 'array');

CREATE TABLE task_dependencies (
    child_id  INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    parent_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (child_id, parent_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX task_dependencies_parent ON task_dependencies (parent_id);

-- SQLite can't add a CHECK to an existing table; this trigger stands in
-- for Postgres's tasks_waiting_has_pending_parents.
CREATE TRIGGER tasks_waiting_has_pending_parents
    BEFORE UPDATE OF status, pending_parents ON tasks
    WHEN NEW.status = 'waiting' AND NEW.pending_parents <= 0
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tasks_waiting_has_pending_parents');
END;

CREATE TRIGGER tasks_release_dependents
    AFTER UPDATE OF status ON tasks
    WHEN OLD.status IS NOT NEW.status AND NEW.status = 'completed'
BEGIN
    -- One parent fewer to wait for; the last one releases the child.
    UPDATE tasks
    SET pending_parents = pending_parents - 1,
        status = CASE WHEN pending_parents = 1 THEN 'queued' ELSE status END,
        run_at = CASE WHEN pending_parents = 1 THEN max(run_at, NEW.finished_at) ELSE run_at END
    WHERE status = 'waiting'
      AND id IN (SELECT child_id FROM task_dependencies WHERE parent_id = NEW.id);
END;

CREATE TRIGGER tasks_cancel_dependents
    AFTER UPDATE OF status ON tasks
    WHEN OLD.status IS NOT NEW.status AND NEW.status IN ('failed', 'cancelled', 'dropped')
BEGIN
    -- The children can never run. Their own children follow, as this
    -- trigger fires for each of them.
    UPDATE tasks
    SET status = 'cancelled',
        finished_at = NEW.finished_at,
        error = 'dependency ' || lower(hex(NEW.token)) || ' ended ' || NEW.status,
        errors = json_insert(errors, '$[#]', json_object(
            'attempt', attempt,
            'message', 'dependency ' || lower(hex(NEW.token)) || ' ended ' || NEW.status,
            'at', NEW.finished_at))
    WHERE status = 'waiting'
      AND id IN (SELECT child_id FROM task_dependencies WHERE parent_id = NEW.id);
END;
