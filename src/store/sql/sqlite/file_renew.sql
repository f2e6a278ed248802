-- File ?1 is still being written: not abandoned before ?2. No row: it
-- was doomed meanwhile.
UPDATE files SET expires_at = ?2
WHERE id = ?1 AND state = 'writing'
