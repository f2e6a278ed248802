-- The caller's scope and a filter, as one JSON object ?1 (an absent key
-- matches everything): what task_list, task_cancel_matching,
-- task_retry_matching, task_stats and task_throughput put where they write
-- the marker task_filter. Scope: scope_owner and
-- scope_product (both absent: every task). Filter: status, kind, queue,
-- owner, product, schedule (lists: any of them), created_after, created_before,
-- finished_after, finished_before (times, as text in the stored form;
-- after inclusive, before exclusive), cancel_requested (a boolean).
((json_extract(?1, '$.scope_owner') IS NULL AND json_extract(?1, '$.scope_product') IS NULL)
  OR owner = json_extract(?1, '$.scope_owner') OR product = json_extract(?1, '$.scope_product'))
AND (json_extract(?1, '$.status') IS NULL
     OR status IN (SELECT value FROM json_each(?1, '$.status')))
AND (json_extract(?1, '$.kind') IS NULL
     OR kind IN (SELECT value FROM json_each(?1, '$.kind')))
AND (json_extract(?1, '$.queue') IS NULL
     OR queue IN (SELECT value FROM json_each(?1, '$.queue')))
AND (json_extract(?1, '$.owner') IS NULL
     OR owner IN (SELECT value FROM json_each(?1, '$.owner')))
AND (json_extract(?1, '$.product') IS NULL
     OR product IN (SELECT value FROM json_each(?1, '$.product')))
AND (json_extract(?1, '$.schedule') IS NULL
     OR schedule IN (SELECT value FROM json_each(?1, '$.schedule')))
AND (json_extract(?1, '$.created_after') IS NULL
     OR created_at >= json_extract(?1, '$.created_after'))
AND (json_extract(?1, '$.created_before') IS NULL
     OR created_at < json_extract(?1, '$.created_before'))
AND (json_extract(?1, '$.finished_after') IS NULL
     OR finished_at >= json_extract(?1, '$.finished_after'))
AND (json_extract(?1, '$.finished_before') IS NULL
     OR finished_at < json_extract(?1, '$.finished_before'))
AND (json_extract(?1, '$.cancel_requested') IS NULL
     OR (cancel_requested_at IS NOT NULL) = json_extract(?1, '$.cancel_requested'))
