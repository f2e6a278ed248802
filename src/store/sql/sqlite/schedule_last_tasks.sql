-- The latest task (by tick) of each schedule named in ?1 (a JSON array)
-- that still has one: for each, one step down the unique index of ticks,
-- however many tasks the schedule made.
SELECT * FROM tasks
WHERE id IN (
    SELECT (SELECT id FROM tasks
            WHERE schedule = n.value
            ORDER BY scheduled_for DESC
            LIMIT 1)
    FROM json_each(?1) AS n
)
