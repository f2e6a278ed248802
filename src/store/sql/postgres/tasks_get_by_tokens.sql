-- Tasks by token ($1: a JSON array of tokens as hex), in any order. The
-- array is read first (ARRAY(…)), so the token index finds each one.
SELECT * FROM tasks WHERE token = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)::uuid))
