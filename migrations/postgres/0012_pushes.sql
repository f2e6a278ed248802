-- Pushes: a new task handed to an idle worker in its insert's own commit.
--
-- A claim costs a round trip and a synchronous commit after the insert's
-- own: the larger part of the time from a create to its handler's start.
-- A worker whose queue ran dry therefore offers its free slots here
-- (task_offer.sql); an insert seats new tasks on live offers
-- (tasks_insert_seated.sql), writing each as `running`, attempt 1, leased
-- to that worker, and hands the worker the row in a notification
-- (`errand_pushed`): its handler starts without another statement.

CREATE TABLE task_offers (
    worker_id    text NOT NULL,
    queue        text NOT NULL,
    -- Tasks the worker takes now; each seated task takes one.
    slots        integer NOT NULL,
    -- The kinds it runs: a task of another kind is not seated there.
    kinds        text[] NOT NULL,
    -- The lease a seated task gets, as the worker would give it.
    lease_ms     bigint NOT NULL,
    -- The backend of the worker's LISTEN connection: an offer whose
    -- listener is gone (its process died, its connection dropped) seats
    -- nothing, because nothing would hear of the task.
    listener_pid integer NOT NULL,
    -- Renewed by the worker's heartbeat: a worker that stopped (frozen,
    -- cut off) stops getting tasks when this passes.
    expires_at   timestamptz NOT NULL,

    CONSTRAINT task_offers_key PRIMARY KEY (worker_id, queue),
    CONSTRAINT task_offers_slots_valid CHECK (slots >= 0),
    CONSTRAINT task_offers_lease_positive CHECK (lease_ms > 0)
) WITH (fillfactor = 50);

-- Set on a task that was seated on an offer when inserted. While it is
-- still running that first attempt (attempt 1) on its worker, it may be a
-- task whose notification the worker never got (its listener reconnected):
-- the worker then hands it back (tasks_pushed_release.sql).
ALTER TABLE tasks ADD COLUMN pushed boolean NOT NULL DEFAULT false;
