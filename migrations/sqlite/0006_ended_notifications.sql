-- Postgres tells API processes that a task ended with NOTIFY; SQLite has no
-- notifications (the store tells its own process, and others poll). This
-- migration is empty so that both stores keep the same numbering.
SELECT 1;
