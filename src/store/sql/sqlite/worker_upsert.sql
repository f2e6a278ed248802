-- A worker process says it is alive (at start, and with every heartbeat).
INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at, running)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, running = excluded.running
