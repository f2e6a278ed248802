-- Files to delete: up to $2 that no task uses, and that a task used (the
-- task was deleted), that expired before $1 (a ready file no task took,
-- or one whose writer stopped renewing it: it died), or that an earlier
-- pass doomed but did not finish. A file an attempt made is kept while its
-- task runs, whatever its expiry. They become `deleting` (never usable
-- again) until their bytes are gone. Files locked by a task
-- being created are skipped.
UPDATE files SET state = 'deleting'
WHERE id IN (
    SELECT f.id FROM files f
    WHERE ((f.state = 'ready' AND f.used)
           OR (f.state IN ('writing', 'ready') AND f.expires_at <= $1)
           OR f.state = 'deleting')
      AND NOT EXISTS (SELECT 1 FROM task_files tf WHERE tf.file_id = f.id)
      AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = f.made_by AND t.status = 'running')
    ORDER BY f.expires_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING id, location
