-- A batch create (`POST /v1/tasks/batch`) with an Idempotency-Key names
-- every task it made, in order (their ids, a JSON array); task_id holds
-- the first, so that the key goes with it.
ALTER TABLE idempotency_keys ADD COLUMN batch jsonb
    CONSTRAINT idempotency_keys_batch_is_array CHECK (batch IS NULL OR jsonb_typeof(batch) = 'array');
