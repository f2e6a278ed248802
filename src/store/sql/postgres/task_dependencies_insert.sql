-- Task $1 depends on each task of $2 (a JSON array of ids), each of which
-- now has a dependent: its end settles its children (tasks_settle_dependents
-- fires only for tasks that have some). task_parents.sql locked them.
WITH deps AS (
    INSERT INTO task_dependencies (child_id, parent_id)
    SELECT $1, (jsonb_array_elements_text($2::jsonb))::bigint
    RETURNING parent_id
)
UPDATE tasks SET has_dependents = true
WHERE id IN (SELECT parent_id FROM deps) AND NOT has_dependents
