-- Files: large inputs and outputs of tasks, streamed in and out, never in
-- the task's JSON. A file is written (`writing`), then checked and made
-- visible at once (`ready`); only a ready file can be used or downloaded.
-- A file no task has used is deleted once it expires (`deleting`, then
-- gone); one a task uses lives as long as the tasks that use it.
CREATE TABLE files (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What clients name it by.
    public_id    uuid NOT NULL,
    owner        text NOT NULL,
    product      text,
    state        text NOT NULL,
    size         bigint NOT NULL DEFAULT 0,
    sha256       bytea,
    content_type text NOT NULL,
    -- In the database: the size of its chunks (file_chunks).
    chunk_bytes  bigint,
    -- In object storage: the object's path.
    location     text,
    created_at   timestamptz NOT NULL,
    -- Ready and unused: deleted after this. Being written: its writer
    -- renews it as it goes; past it, the writer died and it is removed.
    expires_at   timestamptz NOT NULL,
    -- A task took it: once no task uses it any more, it goes.
    used         boolean NOT NULL DEFAULT false,
    -- The task whose attempt made it (an output): kept while that task
    -- runs, so that it is there when the attempt ends.
    made_by      bigint,

    CONSTRAINT files_public_id_unique UNIQUE (public_id),
    CONSTRAINT files_state_valid CHECK (state IN ('writing', 'ready', 'deleting')),
    CONSTRAINT files_ready_has_digest CHECK (state <> 'ready' OR sha256 IS NOT NULL),
    CONSTRAINT files_sha256_is_sha256 CHECK (sha256 IS NULL OR octet_length(sha256) = 32),
    CONSTRAINT files_size_valid CHECK (size >= 0),
    -- Its bytes are in exactly one place.
    CONSTRAINT files_stored_once CHECK ((chunk_bytes IS NULL) <> (location IS NULL))
);
-- The pruner looks for what expired or was abandoned.
CREATE INDEX files_expires ON files (expires_at);

-- A file's bytes, when files live in the database: fixed-size chunks.
CREATE TABLE file_chunks (
    file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq     bigint NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);
-- Media does not compress: store chunks out of line, as they are.
ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Which task uses which file, under which name (inputs given at create,
-- outputs attached when the task completes). A file in use is never pruned.
CREATE TABLE task_files (
    task_id bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name    text NOT NULL,
    role    text NOT NULL,
    file_id bigint NOT NULL REFERENCES files (id),
    PRIMARY KEY (task_id, name),
    CONSTRAINT task_files_role_valid CHECK (role IN ('input', 'output'))
);
CREATE INDEX task_files_file ON task_files (file_id);

-- The task's files as its JSON shows them, kept on the row so that a poll
-- reads one row.
ALTER TABLE tasks ADD COLUMN files jsonb NOT NULL DEFAULT '{"inputs": [], "outputs": []}'
    CONSTRAINT tasks_files_is_object CHECK (jsonb_typeof(files) = 'object');
