-- The same column as migrations/postgres/0009_batches.sql.
ALTER TABLE idempotency_keys ADD COLUMN batch TEXT
    CONSTRAINT idempotency_keys_batch_is_array CHECK (batch IS NULL OR json_type(batch) = 'array');
