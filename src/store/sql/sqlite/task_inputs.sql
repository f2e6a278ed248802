-- The ready files a new task asks for (?1: a JSON array of ids, as hex),
-- read inside the BEGIN IMMEDIATE transaction that writes the task, so
-- that none can be pruned in between.
SELECT * FROM files
WHERE public_id IN (SELECT unhex(value) FROM json_each(?1))
  AND state = 'ready'
