SELECT * FROM tasks WHERE token = ?1
