-- A new file, being written (?1 id, ?2 owner, ?3 product, ?4 content
-- type; ?5 chunk size in the database, or ?6 the object's path; made at
-- ?7, abandoned unless renewed by ?8; ?9 the task whose attempt makes it).
INSERT INTO files (public_id, owner, product, state, content_type, chunk_bytes, location,
                   created_at, expires_at, made_by)
VALUES (?1, ?2, ?3, 'writing', ?4, ?5, ?6, ?7, ?8, ?9)
RETURNING id
