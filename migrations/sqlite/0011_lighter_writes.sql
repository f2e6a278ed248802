-- The same column as migrations/postgres/0011_lighter_writes.sql: a client waits
-- for this task to end. SQLite sends no notifications (a process tells its
-- own waiters, others look again), so here it only keeps the two schemas
-- alike.
ALTER TABLE tasks ADD COLUMN watched INTEGER NOT NULL DEFAULT 0
    CONSTRAINT tasks_watched_is_boolean CHECK (watched IN (0, 1));
