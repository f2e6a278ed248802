-- The ready file with public id $1.
SELECT * FROM files WHERE public_id = $1 AND state = 'ready'
