-- The request holding key $2 of owner $1 failed: free the key at once.
DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND task_id IS NULL
