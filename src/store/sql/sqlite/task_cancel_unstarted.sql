-- Cancel a task that has not started, if it is still in the status the
-- caller saw (?2): a compare-and-set, so a claim in between wins cleanly.
UPDATE tasks
SET status = 'cancelled', finished_at = ?3, error = ?4
WHERE id = ?1 AND status = ?2
RETURNING *
