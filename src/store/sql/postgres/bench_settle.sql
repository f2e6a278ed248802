-- `errand bench`: the tasks table as it is in a steady state, long after
-- its history was written: vacuumed, its statistics up to date.
VACUUM (ANALYZE) tasks
