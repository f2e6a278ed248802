-- The request holding key ?2 of owner ?1 created task ?3 (a batch: the
-- tasks ?4, the first being ?3).
UPDATE idempotency_keys SET task_id = ?3, batch = ?4 WHERE owner = ?1 AND key = ?2
