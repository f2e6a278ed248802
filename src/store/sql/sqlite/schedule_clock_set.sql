-- A scheduler's promise to look again by ?1 (each pass makes one), or NULL
-- from one that stops cleanly: a tick after the last promise, before the
-- start of a scheduler running now, passed with none alive.
UPDATE schedule_clock SET alive_until = ?1 WHERE id = 1
