-- A scheduler's promise to look again by ?1: each pass makes one, and one
-- that stops cleanly promises only up to its stop. A tick after the last
-- promise, before the start of a scheduler running now, passed with none
-- alive.
UPDATE schedule_clock SET alive_until = ?1 WHERE id = 1
