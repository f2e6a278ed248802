-- Control over time and load: start deadlines (a new terminal status,
-- `expired`), snoozes, schedules, and paused queues.

-- `expired`: a task whose start deadline (`start_by`) passed before any
-- attempt of it counted. Terminal, like the other four endings. The new
-- checks allow all that the old ones did, so every row already meets
-- them: NOT VALID spares a large table a scan under its lock (new writes
-- are checked all the same).
ALTER TABLE tasks DROP CONSTRAINT tasks_status_valid;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_valid CHECK (status IN
    ('waiting', 'queued', 'running', 'completed', 'failed', 'cancelled', 'dropped', 'expired'))
    NOT VALID;
ALTER TABLE tasks DROP CONSTRAINT tasks_finished_iff_terminal;
ALTER TABLE tasks ADD CONSTRAINT tasks_finished_iff_terminal CHECK (
    (finished_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled', 'dropped', 'expired')))
    NOT VALID;
ALTER TABLE tasks ADD COLUMN start_by timestamptz;
-- The expirer finds unstarted tasks past their deadline here.
CREATE INDEX tasks_start_by ON tasks (start_by)
    WHERE start_by IS NOT NULL AND status IN ('waiting', 'queued');

-- Times the handler said "not yet" (each queued it again, the attempt not
-- counted).
ALTER TABLE tasks ADD COLUMN snoozes integer NOT NULL DEFAULT 0
    CONSTRAINT tasks_snoozes_valid CHECK (snoozes >= 0);

-- A task a schedule made: which schedule, and the tick. One task per tick
-- of a schedule, whichever process fired it: the database refuses a
-- second.
ALTER TABLE tasks ADD COLUMN schedule text;
ALTER TABLE tasks ADD COLUMN scheduled_for timestamptz;
-- (Both columns are new, so every row meets this: NOT VALID, as above.)
ALTER TABLE tasks ADD CONSTRAINT tasks_scheduled_with_tick
    CHECK ((schedule IS NULL) = (scheduled_for IS NULL)) NOT VALID;
CREATE UNIQUE INDEX tasks_schedule_tick ON tasks (schedule, scheduled_for)
    WHERE schedule IS NOT NULL;

-- Operators look for tasks that ended badly: expired ones too.
DROP INDEX tasks_ended_badly;
CREATE INDEX tasks_ended_badly ON tasks (id DESC)
    WHERE status IN ('failed', 'cancelled', 'dropped', 'expired');

-- A task that expires dooms its waiting children, and its end is
-- announced, as any other bad end's.
DROP TRIGGER tasks_settle_dependents ON tasks;
CREATE TRIGGER tasks_settle_dependents
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.has_dependents
                       AND OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.status IN ('completed', 'failed', 'cancelled', 'dropped', 'expired'))
    EXECUTE FUNCTION errand_settle_dependents();
DROP TRIGGER tasks_notify_ended ON tasks;
CREATE TRIGGER tasks_notify_ended
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN ((NEW.watched OR NEW.callback_url IS NOT NULL)
                       AND OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.status IN ('completed', 'failed', 'cancelled', 'dropped', 'expired'))
    EXECUTE FUNCTION errand_notify_ended();

-- Queues an operator paused: no worker starts their tasks (task_claim.sql,
-- tasks_insert_seated.sql) until resumed; creating into them still works.
CREATE TABLE queues (
    name      text PRIMARY KEY,
    paused_at timestamptz,
    -- The name of the token that paused it.
    paused_by text,
    CONSTRAINT queues_paused_by_someone CHECK ((paused_at IS NULL) = (paused_by IS NULL))
);

-- Schedules: a task at every tick of a cron expression. `next_tick` is the
-- first tick no scheduler has handled: a pass that fires ticks moves it on
-- in the transaction that inserts their tasks, so a tick is handled once
-- however many processes look (and the unique index above refuses a
-- second task for a tick all the same).
CREATE TABLE schedules (
    name         text PRIMARY KEY,
    cron         text NOT NULL,
    timezone     text NOT NULL,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    queue        text,
    priority     integer,
    max_attempts integer,
    timeout_ms   bigint,
    owner        text NOT NULL,
    product      text,
    missed       text NOT NULL,
    overlap      text NOT NULL,
    source       text NOT NULL,
    next_tick    timestamptz NOT NULL,
    paused_at    timestamptz,
    paused_by    text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,

    CONSTRAINT schedules_missed_valid CHECK (missed IN ('skip', 'once')),
    CONSTRAINT schedules_overlap_valid CHECK (overlap IN ('allow', 'skip')),
    CONSTRAINT schedules_source_valid CHECK (source IN ('config', 'api')),
    CONSTRAINT schedules_paused_by_someone CHECK ((paused_at IS NULL) = (paused_by IS NULL)),
    CONSTRAINT schedules_timeout_positive CHECK (timeout_ms IS NULL OR timeout_ms > 0)
);

-- When schedulers last promised to look again: a tick after that, and
-- before a scheduler that is running now started, passed with none alive
-- (it was missed). One row.
CREATE TABLE schedule_clock (
    id          integer PRIMARY KEY,
    alive_until timestamptz,
    CONSTRAINT schedule_clock_one_row CHECK (id = 1)
);
INSERT INTO schedule_clock (id, alive_until) VALUES (1, NULL);

-- A resumed queue wakes the workers waiting on it, as new tasks do.
CREATE FUNCTION errand_notify_resumed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_queued', NEW.name);
    RETURN NULL;
END
$$;

CREATE TRIGGER queues_notify_resumed
    AFTER UPDATE OF paused_at ON queues
    FOR EACH ROW WHEN (OLD.paused_at IS NOT NULL AND NEW.paused_at IS NULL)
    EXECUTE FUNCTION errand_notify_resumed();
