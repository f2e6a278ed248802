-- Per queue, when its longest-waiting task became due ($1: now; only
-- queued tasks due by then count: a delayed task is not waiting yet).
SELECT queue, min(run_at) AS oldest FROM tasks
WHERE status = 'queued' AND run_at <= $1
GROUP BY queue
