-- Files: the same tables and invariants as migrations/postgres/0008_files.sql.
CREATE TABLE files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id    BLOB NOT NULL,
    owner        TEXT NOT NULL,
    product      TEXT,
    state        TEXT NOT NULL,
    size         INTEGER NOT NULL DEFAULT 0,
    sha256       BLOB,
    content_type TEXT NOT NULL,
    chunk_bytes  INTEGER,
    location     TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0,
    made_by      INTEGER,

    CONSTRAINT files_public_id_unique UNIQUE (public_id),
    CONSTRAINT files_state_valid CHECK (state IN ('writing', 'ready', 'deleting')),
    CONSTRAINT files_ready_has_digest CHECK (state <> 'ready' OR sha256 IS NOT NULL),
    CONSTRAINT files_sha256_is_sha256 CHECK (sha256 IS NULL OR length(sha256) = 32),
    CONSTRAINT files_size_valid CHECK (size >= 0),
    CONSTRAINT files_stored_once CHECK ((chunk_bytes IS NULL) <> (location IS NULL))
);
CREATE INDEX files_expires ON files (expires_at);

CREATE TABLE file_chunks (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (file_id, seq)
);

CREATE TABLE task_files (
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    role    TEXT NOT NULL,
    file_id INTEGER NOT NULL REFERENCES files (id),
    PRIMARY KEY (task_id, name),
    CONSTRAINT task_files_role_valid CHECK (role IN ('input', 'output'))
);
CREATE INDEX task_files_file ON task_files (file_id);

ALTER TABLE tasks ADD COLUMN files TEXT NOT NULL DEFAULT '{"inputs": [], "outputs": []}'
    CONSTRAINT tasks_files_is_object CHECK (json_type(files) = 'object');
