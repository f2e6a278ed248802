-- A page of the tasks the caller may see (?1 owner / ?2 product; both NULL:
-- all) that match the filter (?3-?12; NULL: any), newest first, after the
-- cursor (?13). Every value is a parameter; lists come as JSON arrays.
SELECT * FROM tasks
WHERE ((?1 IS NULL AND ?2 IS NULL) OR owner = ?1 OR product = ?2)
  AND (?3 IS NULL OR status IN (SELECT value FROM json_each(?3)))
  AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR queue IN (SELECT value FROM json_each(?5)))
  AND (?6 IS NULL OR owner IN (SELECT value FROM json_each(?6)))
  AND (?7 IS NULL OR product IN (SELECT value FROM json_each(?7)))
  AND (?8 IS NULL OR created_at >= ?8)
  AND (?9 IS NULL OR created_at < ?9)
  AND (?10 IS NULL OR finished_at >= ?10)
  AND (?11 IS NULL OR finished_at < ?11)
  AND (?12 IS NULL OR (cancel_requested_at IS NOT NULL) = ?12)
  AND (?13 IS NULL OR id < ?13)
ORDER BY id DESC
LIMIT ?14
