-- Claim key ?2 of owner ?1 for a request with body hash ?3: a new key, an
-- expired one, or one whose first request was abandoned in flight (created
-- before ?6 with no task). A row back means the caller holds the key.
INSERT INTO idempotency_keys (owner, key, request_hash, created_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (owner, key) DO UPDATE
SET request_hash = excluded.request_hash, created_at = excluded.created_at,
    expires_at = excluded.expires_at, task_id = NULL
WHERE idempotency_keys.expires_at <= excluded.created_at
   OR (idempotency_keys.task_id IS NULL AND idempotency_keys.created_at < ?6)
RETURNING owner
