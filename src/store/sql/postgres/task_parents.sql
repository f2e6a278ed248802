-- The would-be parents of a new task ($1: a JSON array of tokens), locked
-- until the new task and its dependencies are written: a parent that ends
-- meanwhile waits for that, and then its trigger sees the new child.
SELECT * FROM tasks
WHERE token = ANY (ARRAY(SELECT (jsonb_array_elements_text($1::jsonb))::uuid))
ORDER BY id
FOR SHARE
