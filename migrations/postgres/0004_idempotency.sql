-- Idempotency-Key: per owner, a key names one create request. A key with
-- no task yet is in flight; it keeps its task until it expires.
CREATE TABLE idempotency_keys (
    owner        text NOT NULL,
    key          text NOT NULL,
    -- SHA-256 of the request body, canonicalised: the same key with another
    -- body is refused.
    request_hash bytea NOT NULL,
    task_id      bigint REFERENCES tasks (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (owner, key),
    CONSTRAINT idempotency_keys_hash_is_sha256 CHECK (octet_length(request_hash) = 32)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);
