-- The callbacks of tasks $2 (a JSON array of ids) were queued at $1.
UPDATE tasks SET callback_enqueued_at = $1
WHERE id = ANY (ARRAY(SELECT (jsonb_array_elements_text($2::jsonb))::bigint))
