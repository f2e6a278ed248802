-- The latest task (by tick) of each schedule named in $1 (a JSON array)
-- that still has one: for each, one step down the unique index of ticks,
-- however many tasks the schedule made.
SELECT t.* FROM jsonb_array_elements_text($1::jsonb) AS n(name)
CROSS JOIN LATERAL (
    SELECT * FROM tasks
    WHERE schedule = n.name
    ORDER BY scheduled_for DESC
    LIMIT 1
) t
