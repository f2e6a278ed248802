-- Resume queue ?1; a row if it was paused.
UPDATE queues SET paused_at = NULL, paused_by = NULL
WHERE name = ?1 AND paused_at IS NOT NULL
RETURNING name
