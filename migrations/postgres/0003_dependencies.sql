-- Dependencies: a task may wait for others (its parents). It stays
-- `waiting` while any parent has not completed, becomes `queued` in the
-- transaction that completes its last parent, and ends `cancelled` in the
-- transaction that ends any parent otherwise (cascading down chains). The
-- triggers below do both, so that no code path that ends a task can forget.

-- Parents not yet completed; the child is `waiting` while this is above 0.
ALTER TABLE tasks ADD COLUMN pending_parents integer NOT NULL DEFAULT 0
    CONSTRAINT tasks_pending_parents_valid CHECK (pending_parents >= 0);
-- The parents' tokens, as the client gave them (kept when a parent is deleted).
ALTER TABLE tasks ADD COLUMN depends_on jsonb NOT NULL DEFAULT '[]'
    CONSTRAINT tasks_depends_on_is_array CHECK (jsonb_typeof(depends_on) = 'array');
ALTER TABLE tasks ADD CONSTRAINT tasks_waiting_has_pending_parents
    CHECK (status <> 'waiting' OR pending_parents > 0);

CREATE TABLE task_dependencies (
    child_id  bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    parent_id bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (child_id, parent_id)
);
CREATE INDEX task_dependencies_parent ON task_dependencies (parent_id);

CREATE FUNCTION errand_settle_dependents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    why text;
BEGIN
    IF NEW.status = 'completed' THEN
        -- One parent fewer to wait for; the last one releases the child.
        UPDATE tasks c
        SET pending_parents = c.pending_parents - 1,
            status = CASE WHEN c.pending_parents = 1 THEN 'queued' ELSE c.status END,
            run_at = CASE WHEN c.pending_parents = 1 THEN GREATEST(c.run_at, NEW.finished_at)
                          ELSE c.run_at END
        FROM task_dependencies d
        WHERE d.parent_id = NEW.id AND c.id = d.child_id AND c.status = 'waiting';
    ELSE
        -- Failed, cancelled or dropped: the children can never run. Their
        -- own children follow, as this trigger fires for each of them.
        why := 'dependency ' || replace(NEW.token::text, '-', '') || ' ended ' || NEW.status;
        UPDATE tasks c
        SET status = 'cancelled',
            finished_at = NEW.finished_at,
            error = why,
            errors = c.errors || jsonb_build_array(jsonb_build_object(
                'attempt', c.attempt, 'message', why, 'at', NEW.finished_at))
        FROM task_dependencies d
        WHERE d.parent_id = NEW.id AND c.id = d.child_id AND c.status = 'waiting';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_settle_dependents
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.status IN ('completed', 'failed', 'cancelled', 'dropped'))
    EXECUTE FUNCTION errand_settle_dependents();
