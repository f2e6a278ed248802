-- Deletes doomed files ?1 (a JSON array of ids), and their chunks.
DELETE FROM files
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'deleting'
