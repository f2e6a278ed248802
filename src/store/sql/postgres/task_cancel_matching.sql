-- Cancel every task the filter matches ($1, see task_filter.sql): those in
-- a status of $3 end `cancelled` at once (with message $5, at $2); running
-- ones, in a status of $4, are asked to stop. Returns each touched row's
-- new status and its worker. Rows are locked in id order first, as every
-- statement that writes many running rows locks them (task_end.sql), so
-- that it never deadlocks with a worker's heartbeat or ends.
WITH locked AS (
    SELECT id FROM tasks
    WHERE /*task_filter*/
      AND (status IN (SELECT jsonb_array_elements_text($3::jsonb))
           OR (status IN (SELECT jsonb_array_elements_text($4::jsonb))
               AND cancel_requested_at IS NULL))
    ORDER BY id
    FOR UPDATE
)
UPDATE tasks
SET status = CASE WHEN status IN (SELECT jsonb_array_elements_text($3::jsonb))
                  THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status IN (SELECT jsonb_array_elements_text($3::jsonb))
                       THEN $2 ELSE finished_at END,
    error = CASE WHEN status IN (SELECT jsonb_array_elements_text($3::jsonb))
                 THEN $5 ELSE error END,
    cancel_requested_at = CASE WHEN status IN (SELECT jsonb_array_elements_text($4::jsonb))
                               THEN $2 ELSE cancel_requested_at END
FROM locked
WHERE tasks.id = locked.id
  AND (status IN (SELECT jsonb_array_elements_text($3::jsonb))
       OR (status IN (SELECT jsonb_array_elements_text($4::jsonb)) AND cancel_requested_at IS NULL))
RETURNING status, worker_id
