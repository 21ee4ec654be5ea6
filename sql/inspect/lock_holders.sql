-- Who holds locks on the tenant tables or apply's advisory lock, for the
-- message when apply gives up waiting. $1: schema; $2: tables; $3: lock key.
SELECT DISTINCT a.pid, coalesce(a.usename::text, '?') AS usename, coalesce(a.state, '?') AS state,
       left(coalesce(a.query, ''), 200) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND (l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relname = ANY($2::text[]))
       OR (l.locktype = 'advisory' AND ((l.classid::bigint << 32) | l.objid::bigint) = $3))
ORDER BY 1
