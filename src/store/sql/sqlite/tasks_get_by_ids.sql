-- Tasks by id (?1: a JSON array of ids), in any order.
SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(?1))
