-- Deletes schedule $1 if it is of source $2. Its tasks stay.
DELETE FROM schedules WHERE name = $1 AND source = $2 RETURNING name
