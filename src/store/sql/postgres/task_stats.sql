-- How many tasks the caller may see ($1, see task_filter.sql: the scope
-- alone) there are of each kind in each status.
SELECT kind, status, count(*) AS n FROM tasks
WHERE /*task_filter*/
GROUP BY kind, status
