-- File $1 (a row id) is not wanted after all: it becomes `deleting`.
UPDATE files SET state = 'deleting' WHERE id = $1 RETURNING id, location
