-- The schedulers' last promise to look again (see schedule_clock_set.sql).
SELECT alive_until FROM schedule_clock WHERE id = 1
