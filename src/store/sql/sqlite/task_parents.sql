-- The would-be parents of a new task (?1: a JSON array of tokens, as hex),
-- read inside the BEGIN IMMEDIATE transaction that writes the new task, so
-- that no parent can end in between.
SELECT * FROM tasks
WHERE token IN (SELECT unhex(value) FROM json_each(?1))
ORDER BY id
