-- A new schedule (the columns in the table's order, $1 to $19); no row
-- back if one of that name exists.
INSERT INTO schedules (name, cron, timezone, kind, payload, queue, priority, max_attempts,
                       timeout_ms, owner, product, missed, overlap, source, next_tick,
                       paused_at, paused_by, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (name) DO NOTHING
RETURNING name
