-- errand's schema: tasks and API tokens. The invariants live here, in named
-- constraints, so that no code path can write a task the domain forbids.

CREATE TABLE tasks (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token               uuid NOT NULL,
    kind                text NOT NULL,
    queue               text NOT NULL,
    priority            integer NOT NULL DEFAULT 0,
    status              text NOT NULL,
    payload             jsonb NOT NULL,
    result              jsonb,
    progress_fraction   double precision NOT NULL DEFAULT 0,
    progress_message    text,
    attempt             integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL,
    timeout_ms          bigint,
    owner               text NOT NULL,
    product             text,
    error               text,
    errors              jsonb NOT NULL DEFAULT '[]',
    created_at          timestamptz NOT NULL,
    run_at              timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    cancel_requested_at timestamptz,
    worker_id           text,
    lease_expires_at    timestamptz,

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
    CONSTRAINT tasks_errors_is_array CHECK (jsonb_typeof(errors) = 'array')
);

-- The claim query's index: runnable rows only, in claim order, so claims stay
-- fast however many finished rows pile up.
CREATE INDEX tasks_runnable ON tasks (queue, priority DESC, run_at, id) WHERE status = 'queued';
-- The rescuer's index: running rows by lease expiry.
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';

-- Wake idle workers of a queue within milliseconds when a task becomes
-- runnable there (insert, retry, rescue). Workers poll as a fallback.
CREATE FUNCTION errand_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_queued', NEW.queue);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_queued
    AFTER INSERT OR UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION errand_notify_queued();

-- Tell the worker running a task that a cancel was requested, so it stops
-- before its next heartbeat would have told it.
CREATE FUNCTION errand_notify_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_cancel', NEW.worker_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_cancel
    AFTER UPDATE OF cancel_requested_at ON tasks
    FOR EACH ROW WHEN (NEW.status = 'running' AND OLD.cancel_requested_at IS NULL
                       AND NEW.cancel_requested_at IS NOT NULL)
    EXECUTE FUNCTION errand_notify_cancel();

CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL,
    product     text,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,

    CONSTRAINT api_tokens_hash_unique UNIQUE (token_hash),
    CONSTRAINT api_tokens_hash_is_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_tokens_name_present CHECK (name <> ''),
    CONSTRAINT api_tokens_role_valid CHECK (role IN ('user', 'admin', 'superuser')),
    CONSTRAINT api_tokens_admin_has_product CHECK (role <> 'admin' OR product IS NOT NULL)
);
