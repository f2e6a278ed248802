-- Cancel every task the filter matches (?1-?12, as in task_list): those in
-- a status of ?14 end `cancelled` at once (with message ?16); running ones,
-- in a status of ?15, are asked to stop. Returns each touched row's new
-- status and its worker.
UPDATE tasks
SET status = CASE WHEN status IN (SELECT value FROM json_each(?14))
                  THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status IN (SELECT value FROM json_each(?14))
                       THEN ?13 ELSE finished_at END,
    error = CASE WHEN status IN (SELECT value FROM json_each(?14))
                 THEN ?16 ELSE error END,
    cancel_requested_at = CASE WHEN status IN (SELECT value FROM json_each(?15))
                               THEN ?13 ELSE cancel_requested_at END
WHERE ((?1 IS NULL AND ?2 IS NULL) OR owner = ?1 OR product = ?2)
  AND (?3 IS NULL OR status IN (SELECT value FROM json_each(?3)))
  AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR queue IN (SELECT value FROM json_each(?5)))
  AND (?6 IS NULL OR owner IN (SELECT value FROM json_each(?6)))
  AND (?7 IS NULL OR product IN (SELECT value FROM json_each(?7)))
  AND (?8 IS NULL OR created_at >= ?8)
  AND (?9 IS NULL OR created_at < ?9)
  AND (?10 IS NULL OR finished_at >= ?10)
  AND (?11 IS NULL OR finished_at < ?11)
  AND (?12 IS NULL OR (cancel_requested_at IS NOT NULL) = ?12)
  AND (status IN (SELECT value FROM json_each(?14))
       OR (status IN (SELECT value FROM json_each(?15)) AND cancel_requested_at IS NULL))
RETURNING status, worker_id
