-- Forget up to $2 keys that expired before $1.
DELETE FROM idempotency_keys
WHERE (owner, key) IN (SELECT owner, key FROM idempotency_keys WHERE expires_at < $1 LIMIT $2)
