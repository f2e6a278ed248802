-- Task $1 uses files $2 (a JSON array of {name, file, role}; file: the id,
-- as hex).
INSERT INTO task_files (task_id, name, role, file_id)
SELECT $1, e.name, e.role, f.id
FROM jsonb_to_recordset($2::jsonb) AS e(name text, role text, file uuid)
JOIN files f ON f.public_id = e.file
