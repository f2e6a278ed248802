-- Files ?1 (a JSON array of ids, as hex) were taken by a task: once no
-- task uses them any more, they go.
UPDATE files SET used = 1
WHERE public_id IN (SELECT unhex(value) FROM json_each(?1))
