-- The caller's scope and a filter, as one JSON object $1 (an absent key
-- matches everything): what task_list, task_cancel_matching,
-- task_retry_matching, task_stats and task_throughput put where they write
-- the marker task_filter. Scope: scope_owner and
-- scope_product (both absent: every task). Filter: status, kind, queue,
-- owner, product, schedule (lists: any of them), created_after, created_before,
-- finished_after, finished_before (times; after inclusive, before
-- exclusive), cancel_requested (a boolean).
((($1::jsonb ->> 'scope_owner') IS NULL AND ($1::jsonb ->> 'scope_product') IS NULL)
  OR owner = $1::jsonb ->> 'scope_owner' OR product = $1::jsonb ->> 'scope_product')
AND ($1::jsonb -> 'status' IS NULL
     OR status IN (SELECT jsonb_array_elements_text($1::jsonb -> 'status')))
AND ($1::jsonb -> 'kind' IS NULL
     OR kind IN (SELECT jsonb_array_elements_text($1::jsonb -> 'kind')))
AND ($1::jsonb -> 'queue' IS NULL
     OR queue IN (SELECT jsonb_array_elements_text($1::jsonb -> 'queue')))
AND ($1::jsonb -> 'owner' IS NULL
     OR owner IN (SELECT jsonb_array_elements_text($1::jsonb -> 'owner')))
AND ($1::jsonb -> 'product' IS NULL
     OR product IN (SELECT jsonb_array_elements_text($1::jsonb -> 'product')))
AND ($1::jsonb -> 'schedule' IS NULL
     OR schedule IN (SELECT jsonb_array_elements_text($1::jsonb -> 'schedule')))
AND ($1::jsonb ->> 'created_after' IS NULL
     OR created_at >= ($1::jsonb ->> 'created_after')::timestamptz)
AND ($1::jsonb ->> 'created_before' IS NULL
     OR created_at < ($1::jsonb ->> 'created_before')::timestamptz)
AND ($1::jsonb ->> 'finished_after' IS NULL
     OR finished_at >= ($1::jsonb ->> 'finished_after')::timestamptz)
AND ($1::jsonb ->> 'finished_before' IS NULL
     OR finished_at < ($1::jsonb ->> 'finished_before')::timestamptz)
AND ($1::jsonb -> 'cancel_requested' IS NULL
     OR (cancel_requested_at IS NOT NULL) = ($1::jsonb -> 'cancel_requested')::boolean)
