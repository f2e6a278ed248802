-- The latest task (by tick) of each schedule named in ?1 (a JSON array)
-- that still has one.
SELECT t.* FROM tasks t
WHERE t.schedule IN (SELECT value FROM json_each(?1))
  AND t.scheduled_for = (SELECT max(u.scheduled_for) FROM tasks u WHERE u.schedule = t.schedule)
