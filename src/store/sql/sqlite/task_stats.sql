-- How many tasks the caller may see (?1 owner / ?2 product; both NULL: all)
-- there are of each kind in each status.
SELECT kind, status, count(*) AS n FROM tasks
WHERE ((?1 IS NULL AND ?2 IS NULL) OR owner = ?1 OR product = ?2)
GROUP BY kind, status
