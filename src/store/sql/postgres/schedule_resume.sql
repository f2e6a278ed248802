-- Resume schedule $1: its next tick is $2 (the ticks it was paused over
-- make no task). Resuming a running one changes nothing.
UPDATE schedules
SET next_tick = CASE WHEN paused_at IS NULL THEN next_tick ELSE $2 END,
    paused_at = NULL, paused_by = NULL
WHERE name = $1
RETURNING *
