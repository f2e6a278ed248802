-- Files $1 (a JSON array of ids, as hex) were taken by a task: once no
-- task uses them any more, they go.
UPDATE files SET used = true
WHERE public_id = ANY (ARRAY(SELECT (jsonb_array_elements_text($1::jsonb))::uuid))
