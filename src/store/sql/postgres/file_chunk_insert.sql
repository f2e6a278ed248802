-- Chunk $2 (from 0) of file $1.
INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)
