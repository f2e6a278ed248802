-- Up to ?3 chunks of file ?1, from chunk ?2 on, in order.
SELECT seq, data FROM file_chunks
WHERE file_id = ?1 AND seq >= ?2
ORDER BY seq
LIMIT ?3
