-- no-transaction
-- The same as migrations/postgres/0013_control.sql: start deadlines (a new
-- terminal status, `expired`), snoozes, schedules, and paused queues.
--
-- SQLite can't change a table's CHECK constraints, and the status ones
-- must now allow `expired`: the tasks table is made anew and its rows
-- copied over, with foreign keys off while the old table goes (dropping it
-- with them on would delete, by cascade, every row that refers to a task)
-- and everything in one transaction. Hence no transaction around this
-- file: `PRAGMA foreign_keys` does nothing inside one.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE tasks_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    token                BLOB NOT NULL,
    kind                 TEXT NOT NULL,
    queue                TEXT NOT NULL,
    priority             INTEGER NOT NULL DEFAULT 0,
    status               TEXT NOT NULL,
    payload              TEXT NOT NULL,
    result               TEXT,
    progress_fraction    REAL NOT NULL DEFAULT 0,
    progress_message     TEXT,
    attempt              INTEGER NOT NULL DEFAULT 0,
    max_attempts         INTEGER NOT NULL,
    timeout_ms           INTEGER,
    owner                TEXT NOT NULL,
    product              TEXT,
    error                TEXT,
    errors               TEXT NOT NULL DEFAULT '[]',
    created_at           TEXT NOT NULL,
    run_at               TEXT NOT NULL,
    started_at           TEXT,
    finished_at          TEXT,
    cancel_requested_at  TEXT,
    worker_id            TEXT,
    lease_expires_at     TEXT,
    pending_parents      INTEGER NOT NULL DEFAULT 0,
    depends_on           TEXT NOT NULL DEFAULT '[]',
    callback_url         TEXT,
    callback_enqueued_at TEXT,
    files                TEXT NOT NULL DEFAULT '{"inputs": [], "outputs": []}',
    watched              INTEGER NOT NULL DEFAULT 0,
    start_by             TEXT,
    snoozes              INTEGER NOT NULL DEFAULT 0,
    schedule             TEXT,
    scheduled_for        TEXT,

    CONSTRAINT tasks_token_unique UNIQUE (token),
    CONSTRAINT tasks_status_valid CHECK (status IN
        ('waiting', 'queued', 'running', 'completed', 'failed', 'cancelled', 'dropped', 'expired')),
    -- finished_at is set exactly when the status is terminal.
    CONSTRAINT tasks_finished_iff_terminal CHECK (
        (finished_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled', 'dropped', 'expired'))),
    -- A running task is held by exactly one worker, until its lease expires.
    CONSTRAINT tasks_running_iff_leased CHECK (
        (status = 'running') = (worker_id IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT tasks_attempts_valid CHECK (
        max_attempts >= 1 AND attempt >= 0 AND attempt <= max_attempts),
    -- A task that ran has a start time.
    CONSTRAINT tasks_started_when_attempted CHECK ((attempt = 0) = (started_at IS NULL)),
    CONSTRAINT tasks_progress_fraction_valid CHECK (progress_fraction BETWEEN 0 AND 1),
    CONSTRAINT tasks_timeout_positive CHECK (timeout_ms IS NULL OR timeout_ms > 0),
    CONSTRAINT tasks_token_is_uuid CHECK (length(token) = 16),
    CONSTRAINT tasks_payload_is_json CHECK (json_valid(payload)),
    CONSTRAINT tasks_result_is_json CHECK (result IS NULL OR json_valid(result)),
    CONSTRAINT tasks_errors_is_array CHECK (json_type(errors) = 'array'),
    CONSTRAINT tasks_pending_parents_valid CHECK (pending_parents >= 0),
    CONSTRAINT tasks_depends_on_is_array CHECK (json_type(depends_on) = 'array'),
    CONSTRAINT tasks_files_is_object CHECK (json_type(files) = 'object'),
    CONSTRAINT tasks_watched_is_boolean CHECK (watched IN (0, 1)),
    CONSTRAINT tasks_snoozes_valid CHECK (snoozes >= 0),
    CONSTRAINT tasks_scheduled_with_tick CHECK ((schedule IS NULL) = (scheduled_for IS NULL))
) STRICT;

INSERT INTO tasks_new (
    id, token, kind, queue, priority, status, payload, result, progress_fraction,
    progress_message, attempt, max_attempts, timeout_ms, owner, product, error, errors,
    created_at, run_at, started_at, finished_at, cancel_requested_at, worker_id,
    lease_expires_at, pending_parents, depends_on, callback_url, callback_enqueued_at, files,
    watched)
SELECT
    id, token, kind, queue, priority, status, payload, result, progress_fraction,
    progress_message, attempt, max_attempts, timeout_ms, owner, product, error, errors,
    created_at, run_at, started_at, finished_at, cancel_requested_at, worker_id,
    lease_expires_at, pending_parents, depends_on, callback_url, callback_enqueued_at, files,
    watched
FROM tasks;

-- Ids go on from where the old table's left off (AUTOINCREMENT never
-- gives an id twice, not even that of a deleted task).
DELETE FROM sqlite_sequence WHERE name = 'tasks_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'tasks_new', seq FROM sqlite_sequence WHERE name = 'tasks';

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

-- The indexes of migrations 0001, 0002, 0005 and 0007, with expired tasks
-- among those that ended badly, and this migration's own.
CREATE INDEX tasks_runnable ON tasks (queue, priority DESC, run_at, id) WHERE status = 'queued';
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_owner_id ON tasks (owner, id DESC);
CREATE INDEX tasks_product_id ON tasks (product, id DESC) WHERE product IS NOT NULL;
CREATE INDEX tasks_ended_badly ON tasks (id DESC)
    WHERE status IN ('failed', 'cancelled', 'dropped', 'expired');
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX tasks_running_queue ON tasks (queue) WHERE status = 'running';
CREATE INDEX tasks_callback_due ON tasks (finished_at)
    WHERE callback_url IS NOT NULL AND finished_at IS NOT NULL AND callback_enqueued_at IS NULL;
CREATE INDEX tasks_start_by ON tasks (start_by)
    WHERE start_by IS NOT NULL AND status IN ('waiting', 'queued');
CREATE UNIQUE INDEX tasks_schedule_tick ON tasks (schedule, scheduled_for)
    WHERE schedule IS NOT NULL;

-- The triggers of migration 0003, an expired parent dooming its children
-- as any other bad end does.
CREATE TRIGGER tasks_waiting_has_pending_parents
    BEFORE UPDATE OF status, pending_parents ON tasks
    WHEN NEW.status = 'waiting' AND NEW.pending_parents <= 0
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tasks_waiting_has_pending_parents');
END;

CREATE TRIGGER tasks_release_dependents
    AFTER UPDATE OF status ON tasks
    WHEN OLD.status IS NOT NEW.status AND NEW.status = 'completed'
BEGIN
    -- One parent fewer to wait for; the last one releases the child.
    UPDATE tasks
    SET pending_parents = pending_parents - 1,
        status = CASE WHEN pending_parents = 1 THEN 'queued' ELSE status END,
        run_at = CASE WHEN pending_parents = 1 THEN max(run_at, NEW.finished_at) ELSE run_at END
    WHERE status = 'waiting'
      AND id IN (SELECT child_id FROM task_dependencies WHERE parent_id = NEW.id);
END;

CREATE TRIGGER tasks_cancel_dependents
    AFTER UPDATE OF status ON tasks
    WHEN OLD.status IS NOT NEW.status AND NEW.status IN ('failed', 'cancelled', 'dropped', 'expired')
BEGIN
    -- The children can never run. Their own children follow, as this
    -- trigger fires for each of them.
    UPDATE tasks
    SET status = 'cancelled',
        finished_at = NEW.finished_at,
        error = 'dependency ' || lower(hex(NEW.token)) || ' ended ' || NEW.status,
        errors = json_insert(errors, '$[#]', json_object(
            'attempt', attempt,
            'message', 'dependency ' || lower(hex(NEW.token)) || ' ended ' || NEW.status,
            'at', NEW.finished_at))
    WHERE status = 'waiting'
      AND id IN (SELECT child_id FROM task_dependencies WHERE parent_id = NEW.id);
END;

CREATE TABLE queues (
    name      TEXT PRIMARY KEY,
    paused_at TEXT,
    paused_by TEXT,
    CONSTRAINT queues_paused_by_someone CHECK ((paused_at IS NULL) = (paused_by IS NULL))
) STRICT;

CREATE TABLE schedules (
    name         TEXT PRIMARY KEY,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    queue        TEXT,
    priority     INTEGER,
    max_attempts INTEGER,
    timeout_ms   INTEGER,
    owner        TEXT NOT NULL,
    product      TEXT,
    missed       TEXT NOT NULL,
    overlap      TEXT NOT NULL,
    source       TEXT NOT NULL,
    next_tick    TEXT NOT NULL,
    paused_at    TEXT,
    paused_by    TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,

    CONSTRAINT schedules_payload_is_json CHECK (json_valid(payload)),
    CONSTRAINT schedules_missed_valid CHECK (missed IN ('skip', 'once')),
    CONSTRAINT schedules_overlap_valid CHECK (overlap IN ('allow', 'skip')),
    CONSTRAINT schedules_source_valid CHECK (source IN ('config', 'api')),
    CONSTRAINT schedules_paused_by_someone CHECK ((paused_at IS NULL) = (paused_by IS NULL)),
    CONSTRAINT schedules_timeout_positive CHECK (timeout_ms IS NULL OR timeout_ms > 0)
) STRICT;

CREATE TABLE schedule_clock (
    id          INTEGER PRIMARY KEY,
    alive_until TEXT,
    CONSTRAINT schedule_clock_one_row CHECK (id = 1)
) STRICT;
INSERT INTO schedule_clock (id, alive_until) VALUES (1, NULL);

COMMIT;
PRAGMA foreign_keys = ON;
