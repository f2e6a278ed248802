-- The paused queues, by whom and since when.
SELECT name, paused_at, paused_by FROM queues WHERE paused_at IS NOT NULL ORDER BY name
