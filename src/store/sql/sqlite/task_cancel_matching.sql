-- Cancel every task the filter matches (?1, see task_filter.sql): those in
-- a status of ?3 end `cancelled` at once (with message ?5, at ?2); running
-- ones, in a status of ?4, are asked to stop. Returns each touched row's
-- new status and its worker.
UPDATE tasks
SET status = CASE WHEN status IN (SELECT value FROM json_each(?3))
                  THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status IN (SELECT value FROM json_each(?3))
                       THEN ?2 ELSE finished_at END,
    error = CASE WHEN status IN (SELECT value FROM json_each(?3))
                 THEN ?5 ELSE error END,
    cancel_requested_at = CASE WHEN status IN (SELECT value FROM json_each(?4))
                               THEN ?2 ELSE cancel_requested_at END
WHERE /*task_filter*/
  AND (status IN (SELECT value FROM json_each(?3))
       OR (status IN (SELECT value FROM json_each(?4)) AND cancel_requested_at IS NULL))
RETURNING status, worker_id
