-- What operators need: listing and filtering, retention, and the workers
-- view.

-- Listings are newest first (id DESC), filtered by who may see them.
CREATE INDEX tasks_owner_id ON tasks (owner, id DESC);
CREATE INDEX tasks_product_id ON tasks (product, id DESC) WHERE product IS NOT NULL;
-- Operators look for tasks that ended badly; an index on every status would
-- be rewritten at every transition of every task, so only those are indexed.
CREATE INDEX tasks_ended_badly ON tasks (id DESC) WHERE status IN ('failed', 'cancelled', 'dropped');
-- Retention deletes finished tasks oldest first.
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;

-- Each worker process registers itself and renews the row with its
-- heartbeat; rows whose heartbeat stopped are pruned by maintenance.
CREATE TABLE workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          bigint NOT NULL,
    queues       jsonb NOT NULL,
    concurrency  bigint NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    running      bigint NOT NULL DEFAULT 0,

    CONSTRAINT workers_queues_is_object CHECK (jsonb_typeof(queues) = 'object'),
    CONSTRAINT workers_running_valid CHECK (running >= 0)
);
