-- Whether any ended task waits for its callback to be queued: a cheap look
-- (the partial index tasks_callback_due) before taking locks.
SELECT EXISTS (
    SELECT 1 FROM tasks
    WHERE callback_url IS NOT NULL AND finished_at IS NOT NULL AND callback_enqueued_at IS NULL
) AS pending
