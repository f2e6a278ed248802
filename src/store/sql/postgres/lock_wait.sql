-- Wait for a lock held until the transaction ends.
SELECT pg_advisory_xact_lock($1)
