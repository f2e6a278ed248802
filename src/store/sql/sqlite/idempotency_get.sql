-- Key ?2 of owner ?1, as another request left it.
SELECT request_hash, task_id, batch FROM idempotency_keys WHERE owner = ?1 AND key = ?2
