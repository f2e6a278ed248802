-- A page of the tasks the caller may see that match the filter ($1, see
-- task_filter.sql), newest first, after the cursor ($2), at most $3.
SELECT * FROM tasks
WHERE /*task_filter*/
  AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3
