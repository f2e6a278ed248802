-- One node at a time does a maintenance pass: held until the transaction ends.
SELECT pg_try_advisory_xact_lock($1)
