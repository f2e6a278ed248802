-- Tasks by id ($1: a JSON array of ids), in any order. The array is read
-- first (ARRAY(…)), so the primary key finds each one (an IN (SELECT …)
-- here was planned as a scan of the whole table).
SELECT * FROM tasks WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)::bigint))
