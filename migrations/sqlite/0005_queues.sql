-- Global concurrency limits count the running tasks of a queue at each
-- claim: this index keeps that count cheap.
CREATE INDEX tasks_running_queue ON tasks (queue) WHERE status = 'running';
