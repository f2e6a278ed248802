-- Tasks by id ($1: a JSON array of ids), in any order.
SELECT * FROM tasks WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)
