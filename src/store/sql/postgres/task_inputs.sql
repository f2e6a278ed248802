-- The ready files a new task asks for ($1: a JSON array of ids, as hex),
-- locked until the task and its task_files rows are written: the pruner
-- skips a locked file (SKIP LOCKED), so none can go in between.
SELECT * FROM files
WHERE public_id = ANY (ARRAY(SELECT (jsonb_array_elements_text($1::jsonb))::uuid))
  AND state = 'ready'
FOR SHARE
