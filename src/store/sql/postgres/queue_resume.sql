-- Resume queue $1; a row if it was paused. (Workers are woken by the
-- queues_notify_resumed trigger, migration 0013.)
UPDATE queues SET paused_at = NULL, paused_by = NULL
WHERE name = $1 AND paused_at IS NOT NULL
RETURNING name
