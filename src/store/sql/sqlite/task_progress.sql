UPDATE tasks
SET progress_fraction = ?3, progress_message = ?4
WHERE id = ?1 AND status = 'running' AND attempt = ?2
