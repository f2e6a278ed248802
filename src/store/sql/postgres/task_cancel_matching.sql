-- Cancel every task the filter matches ($1-$12, as in task_list): those in
-- a status of $14 end `cancelled` at once (with message $16); running ones,
-- in a status of $15, are asked to stop. Returns each touched row's new
-- status and its worker.
UPDATE tasks
SET status = CASE WHEN status IN (SELECT jsonb_array_elements_text($14::jsonb))
                  THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status IN (SELECT jsonb_array_elements_text($14::jsonb))
                       THEN $13 ELSE finished_at END,
    error = CASE WHEN status IN (SELECT jsonb_array_elements_text($14::jsonb))
                 THEN $16 ELSE error END,
    cancel_requested_at = CASE WHEN status IN (SELECT jsonb_array_elements_text($15::jsonb))
                               THEN $13 ELSE cancel_requested_at END
WHERE (($1::text IS NULL AND $2::text IS NULL) OR owner = $1 OR product = $2)
  AND ($3::jsonb IS NULL OR status IN (SELECT jsonb_array_elements_text($3::jsonb)))
  AND ($4::jsonb IS NULL OR kind IN (SELECT jsonb_array_elements_text($4::jsonb)))
  AND ($5::jsonb IS NULL OR queue IN (SELECT jsonb_array_elements_text($5::jsonb)))
  AND ($6::jsonb IS NULL OR owner IN (SELECT jsonb_array_elements_text($6::jsonb)))
  AND ($7::jsonb IS NULL OR product IN (SELECT jsonb_array_elements_text($7::jsonb)))
  AND ($8::timestamptz IS NULL OR created_at >= $8)
  AND ($9::timestamptz IS NULL OR created_at < $9)
  AND ($10::timestamptz IS NULL OR finished_at >= $10)
  AND ($11::timestamptz IS NULL OR finished_at < $11)
  AND ($12::boolean IS NULL OR (cancel_requested_at IS NOT NULL) = $12)
  AND (status IN (SELECT jsonb_array_elements_text($14::jsonb))
       OR (status IN (SELECT jsonb_array_elements_text($15::jsonb)) AND cancel_requested_at IS NULL))
RETURNING status, worker_id
