-- A schedule the configuration declares (?1 to ?19, as schedule_insert.sql
-- binds them): written as declared, over one of the API's of that name
-- too. Its pause stays; so does its next tick, unless its expression or
-- zone changed.
INSERT INTO schedules (name, cron, timezone, kind, payload, queue, priority, max_attempts,
                       timeout_ms, owner, product, missed, overlap, source, next_tick,
                       paused_at, paused_by, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
ON CONFLICT (name) DO UPDATE
SET next_tick = CASE WHEN schedules.cron = excluded.cron AND schedules.timezone = excluded.timezone
                     THEN schedules.next_tick ELSE excluded.next_tick END,
    updated_at = CASE WHEN schedules.cron IS excluded.cron AND schedules.timezone IS excluded.timezone
                        AND schedules.kind IS excluded.kind AND schedules.payload IS excluded.payload
                        AND schedules.queue IS excluded.queue AND schedules.priority IS excluded.priority
                        AND schedules.max_attempts IS excluded.max_attempts
                        AND schedules.timeout_ms IS excluded.timeout_ms
                        AND schedules.owner IS excluded.owner AND schedules.product IS excluded.product
                        AND schedules.missed IS excluded.missed AND schedules.overlap IS excluded.overlap
                        AND schedules.source IS excluded.source
                      THEN schedules.updated_at ELSE excluded.updated_at END,
    cron = excluded.cron, timezone = excluded.timezone, kind = excluded.kind,
    payload = excluded.payload, queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms,
    owner = excluded.owner, product = excluded.product, missed = excluded.missed,
    overlap = excluded.overlap, source = excluded.source
RETURNING *
