-- The shared lock table and what other sessions hold in it now, for apply's
-- lock budget. It has max_locks_per_transaction × (max_connections +
-- max_prepared_transactions) slots (PostgreSQL sizes it a little larger: the
-- difference is headroom); fast-path locks and prepared transactions' (no pid)
-- are counted as PostgreSQL counts them.
SELECT current_setting('max_locks_per_transaction')::bigint AS max_locks_per_transaction,
       current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint AS slots,
       (SELECT count(*) FROM pg_locks WHERE NOT fastpath AND pid IS DISTINCT FROM pg_backend_pid()) AS held
