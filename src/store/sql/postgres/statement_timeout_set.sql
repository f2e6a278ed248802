-- Bound the statements of this transaction only (an operator's listing, say).
SELECT set_config('statement_timeout', $1, true)
