-- A schedule's new definition (?2 to ?14 and ?19, as schedule_insert.sql
-- binds them), if it is still the API's (?1: its name). Its next tick
-- becomes ?15 only if its expression or zone changed (else a pass may
-- have moved it on since it was read); its pause and creation stay.
UPDATE schedules
SET cron = ?2, timezone = ?3, kind = ?4, payload = ?5, queue = ?6, priority = ?7,
    max_attempts = ?8, timeout_ms = ?9, owner = ?10, product = ?11, missed = ?12,
    overlap = ?13, updated_at = ?19,
    next_tick = CASE WHEN cron = ?2 AND timezone = ?3 THEN next_tick ELSE ?15 END
WHERE name = ?1 AND source = ?14
RETURNING *
