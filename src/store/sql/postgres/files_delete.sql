-- Deletes doomed files $1 (a JSON array of ids), and their chunks.
DELETE FROM files
WHERE id = ANY (ARRAY(SELECT (jsonb_array_elements_text($1::jsonb))::bigint)) AND state = 'deleting'
