-- Forgets the schedules the configuration declared before but no longer
-- does (source 'config', name not in $1, a JSON array).
DELETE FROM schedules
WHERE source = 'config' AND name NOT IN (SELECT jsonb_array_elements_text($1::jsonb))
RETURNING name
