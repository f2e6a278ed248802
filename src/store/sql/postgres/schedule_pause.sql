-- Pause schedule $1 ($2: by whom, $3: when); pausing a paused one keeps
-- the first pause.
UPDATE schedules
SET paused_at = COALESCE(paused_at, $3), paused_by = COALESCE(paused_by, $2)
WHERE name = $1
RETURNING *
