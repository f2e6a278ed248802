-- Callbacks: a task with a callback_url gets its final JSON POSTed there
-- when it ends. The task row is the outbox: once it has ended and its
-- delivery has not been queued yet, maintenance queues a delivery task (of
-- the built-in kind `callback`) and stamps callback_enqueued_at, in one
-- transaction.
ALTER TABLE tasks ADD COLUMN callback_url text;
ALTER TABLE tasks ADD COLUMN callback_enqueued_at timestamptz;
ALTER TABLE tasks ADD CONSTRAINT tasks_callback_after_end
    CHECK (callback_enqueued_at IS NULL OR (callback_url IS NOT NULL AND finished_at IS NOT NULL));
CREATE INDEX tasks_callback_due ON tasks (finished_at)
    WHERE callback_url IS NOT NULL AND finished_at IS NOT NULL AND callback_enqueued_at IS NULL;
