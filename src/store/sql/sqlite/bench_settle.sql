-- `errand bench`: the tasks table's statistics up to date, as in a steady
-- state long after its history was written.
ANALYZE tasks
