-- Pause queue $1 ($2: by whom, $3: when). Pausing a paused queue keeps
-- the first pause. Answers the pause in effect.
INSERT INTO queues (name, paused_at, paused_by) VALUES ($1, $3, $2)
ON CONFLICT (name) DO UPDATE
SET paused_at = COALESCE(queues.paused_at, excluded.paused_at),
    paused_by = COALESCE(queues.paused_by, excluded.paused_by)
RETURNING paused_at, paused_by
