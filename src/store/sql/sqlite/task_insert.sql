INSERT INTO tasks (token, kind, queue, priority, status, payload, max_attempts, timeout_ms,
                   owner, product, created_at, run_at, pending_parents, depends_on,
                   callback_url, files)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
RETURNING *
