-- Task $1 depends on each task of $2 (a JSON array of ids).
INSERT INTO task_dependencies (child_id, parent_id)
SELECT $1, (jsonb_array_elements_text($2::jsonb))::bigint
