-- errand's schema for SQLite, the embedded store: the same tables and
-- invariants as migrations/postgres/0001_init.sql. Times are UTC text in one
-- fixed format ("2026-06-01T12:00:00.000000Z"), so that comparing the text
-- compares the times; JSON is text, checked with json_valid.

CREATE TABLE tasks (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    token               BLOB NOT NULL,
    kind                TEXT NOT NULL,
    queue               TEXT NOT NULL,
    priority            INTEGER NOT NULL DEFAULT 0,
    status              TEXT NOT NULL,
    payload             TEXT NOT NULL,
    result              TEXT,
    progress_fraction   REAL NOT NULL DEFAULT 0,
    progress_message    TEXT,
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    timeout_ms          INTEGER,
    owner               TEXT NOT NULL,
    product             TEXT,
    error               TEXT,
    errors              TEXT NOT NULL DEFAULT '[]',
    created_at          TEXT NOT NULL,
    run_at              TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT,
    cancel_requested_at TEXT,
    worker_id           TEXT,
    lease_expires_at    TEXT,

    CONSTRAINT tasks_token_unique UNIQUE (token),
    CONSTRAINT tasks_status_valid CHECK (status IN
        ('waiting', 'queued', 'running', 'completed', 'failed', 'cancelled', 'dropped')),
    -- finished_at is set exactly when the status is terminal.
    CONSTRAINT tasks_finished_iff_terminal CHECK (
        (finished_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled', 'dropped'))),
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
    CONSTRAINT tasks_errors_is_array CHECK (json_type(errors) = 'array')
) STRICT;

-- The claim query's index: runnable rows only, in claim order.
CREATE INDEX tasks_runnable ON tasks (queue, priority DESC, run_at, id) WHERE status = 'queued';
-- The rescuer's index: running rows by lease expiry.
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    product     TEXT,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,

    CONSTRAINT api_tokens_hash_unique UNIQUE (token_hash),
    CONSTRAINT api_tokens_hash_is_sha256 CHECK (length(token_hash) = 32),
    CONSTRAINT api_tokens_name_present CHECK (name <> ''),
    CONSTRAINT api_tokens_role_valid CHECK (role IN ('user', 'admin', 'superuser')),
    CONSTRAINT api_tokens_admin_has_product CHECK (role <> 'admin' OR product IS NOT NULL)
) STRICT;
