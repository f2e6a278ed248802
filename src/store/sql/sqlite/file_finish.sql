-- File ?1 is written: ?2 bytes, SHA-256 ?3; unused, it expires at ?4.
-- From now on it can be used.
UPDATE files SET state = 'ready', size = ?2, sha256 = ?3, expires_at = ?4
WHERE id = ?1 AND state = 'writing'
RETURNING *
