-- Task ?1 uses files ?2 (a JSON array of {name, file, role}; file: the id,
-- as hex).
INSERT INTO task_files (task_id, name, role, file_id)
SELECT ?1, json_extract(e.value, '$.name'), json_extract(e.value, '$.role'), f.id
FROM json_each(?2) AS e
JOIN files f ON f.public_id = unhex(json_extract(e.value, '$.file'))
