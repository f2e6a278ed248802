-- A page of the tasks the caller may see ($1 owner / $2 product; both NULL:
-- all) that match the filter ($3-$12; NULL: any), newest first, after the
-- cursor ($13). Every value is a parameter; lists come as JSON arrays.
SELECT * FROM tasks
WHERE (($1::text IS NULL AND $2::text IS NULL) OR owner = $1 OR product = $2)
  AND ($3::jsonb IS NULL OR status IN (SELECT jsonb_array_elements_text($3::jsonb)))
  AND ($4::jsonb IS NULL OR kind IN (SELECT jsonb_array_elements_text($4::jsonb)))
  AND ($5::jsonb IS NULL OR queue IN (SELECT jsonb_array_elements_text($5::jsonb)))
  AND ($6::jsonb IS NULL OR owner IN (SELECT jsonb_array_elements_text($6::jsonb)))
  AND ($7::jsonb IS NULL OR product IN (SELECT jsonb_array_elements_text($7::jsonb)))
  AND ($8::timestamptz IS NULL OR created_at >= $8)
  AND ($9::timestamptz IS NULL OR created_at < $9)
  AND ($10::timestamptz IS NULL OR finished_at >= $10)
  AND ($11::timestamptz IS NULL OR finished_at < $11)
  AND ($12::boolean IS NULL OR (cancel_requested_at IS NOT NULL) = $12)
  AND ($13::bigint IS NULL OR id < $13)
ORDER BY id DESC
LIMIT $14
