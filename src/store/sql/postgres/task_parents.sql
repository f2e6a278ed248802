-- The would-be parents of a new task ($1: a JSON array of tokens), locked
-- (in id order) until the new task and its dependencies are written: a
-- parent that ends meanwhile waits for that, and then its trigger sees the
-- new child. Locked for update: each is marked as having a dependent.
SELECT * FROM tasks
WHERE token = ANY (ARRAY(SELECT (jsonb_array_elements_text($1::jsonb))::uuid))
ORDER BY id
FOR NO KEY UPDATE
