-- Tasks by token (?1: a JSON array of tokens as hex), in any order.
SELECT * FROM tasks WHERE token IN (SELECT unhex(value) FROM json_each(?1))
