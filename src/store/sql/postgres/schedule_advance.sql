-- Moves schedule $1 on from tick $2 to $3, if no other pass did since it
-- was read and it is not paused: the pass that does fires the ticks in
-- between, in this transaction. (On Postgres a pass that comes second
-- waits for the first's row lock, then finds $2 gone.)
UPDATE schedules SET next_tick = $3
WHERE name = $1 AND next_tick = $2 AND paused_at IS NULL
