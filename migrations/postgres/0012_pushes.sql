-- Pushes: a new task handed to an idle worker in its insert's own commit.
--
-- A claim costs a round trip and a synchronous commit after the insert's
-- own: the larger part of the time from a create to its handler's start.
-- A worker whose queue ran dry therefore offers its free slots here
-- (task_offer.sql); an insert seats new tasks on live offers
-- (tasks_insert.sql), writing each as `running`, attempt 1, leased to that
-- worker, and the trigger below hands the worker the row in a
-- notification: its handler starts without another statement.

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

-- New tasks wake workers once per queue per statement, as before; a
-- seated task goes to its worker as `<worker id> <row as JSON>`, or as
-- `<worker id> {"id": …}` when the row is too large for a notification
-- (8,000 bytes), for the worker to read.
CREATE OR REPLACE FUNCTION errand_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_queued', q.queue)
    FROM (SELECT DISTINCT queue FROM inserted WHERE status = 'queued') q;
    PERFORM pg_notify('errand_pushed', p.worker_id || ' ' ||
                      CASE WHEN octet_length(p.row) + octet_length(p.worker_id) < 7900
                           THEN p.row
                           ELSE json_build_object('id', p.id)::text END)
    FROM (SELECT i.worker_id, i.id, row_to_json(i)::text AS row
          FROM inserted i WHERE i.pushed) p;
    RETURN NULL;
END
$$;
