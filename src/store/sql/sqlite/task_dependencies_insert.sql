-- Task ?1 depends on each task of ?2 (a JSON array of ids).
INSERT INTO task_dependencies (child_id, parent_id)
SELECT ?1, value FROM json_each(?2)
